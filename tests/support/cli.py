"""Running the `gpt2numba` command as a user does, for the tests of every command."""

import os
import subprocess
import sys

# Variables of the parent environment that would change what the CLI prints or where it looks.
CLEARED = ("NO_COLOR", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
           "TRANSFORMERS_OFFLINE")


def cli_env(home, **extra):
    """os.environ (NUMBA_CACHE_DIR from conftest) for a local-folder run: offline, own HF_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(args, env, stdin=b"", command=None, timeout=300):
    """Run the CLI with `args`; returns (returncode, stdout, stderr) as text."""
    command = command or [sys.executable, "-m", "gpt2numba"]
    done = subprocess.run([*command, *map(str, args)], env=env, input=stdin,
                          capture_output=True, timeout=timeout)
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def assert_one_error_line(code, stderr, expected_code, *words):
    """Exit status `expected_code`, stderr exactly one `gpt2numba: error:` line with `words`."""
    lines = stderr.splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("gpt2numba: error: "), lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert code == expected_code, (code, stderr)


def read_terminal(master) -> bytes:
    """Everything written to a pseudo-terminal (pty.openpty's master side) until the child
    process closes its side."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
