"""Running the `gpt2numba` command as a user does, for the tests of every command."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# Variables of the parent environment that would change what the CLI prints or where it looks.
CLEARED = ("NO_COLOR", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
           "TRANSFORMERS_OFFLINE")


def cli_env(home, **extra):
    """os.environ (NUMBA_CACHE_DIR from conftest) for a local-folder run: offline, own HF_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def users_env(env=None, **extra):
    """`env` (default os.environ) with `extra` and without the PYTHONSAFEPATH that conftest sets
    for the tests' own children: as a user starts gpt2numba, whose own children must keep the
    current folder off their sys.path by themselves."""
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONSAFEPATH"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def console_script() -> list[str]:
    """The installed `gpt2numba` command, as a user runs it (its folder, not the current one,
    goes first on its sys.path)."""
    return [shutil.which("gpt2numba") or str(Path(sys.executable).parent / "gpt2numba")]


def run_cli(args, env, stdin=b"", command=None, timeout=300, cwd=None):
    """Run the CLI with `args` in `cwd`; returns (returncode, stdout, stderr) as text."""
    command = command or [sys.executable, "-m", "gpt2numba"]
    done = subprocess.run([*command, *map(str, args)], env=env, input=stdin, cwd=cwd,
                          capture_output=True, timeout=timeout)
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


# The CLI in a child that records its own peak resident memory (VmHWM) into argv[1] on exit.
WITH_PEAK_RSS = textwrap.dedent("""
    import atexit, sys
    def peak():
        with open("/proc/self/status") as status, open(out_file, "w") as out:
            out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    atexit.register(peak)
    out_file, sys.argv = sys.argv[1], ["gpt2numba", *sys.argv[2:]]
    from gpt2numba.__main__ import main
    main()
""")
PEAK_BOUND_KIB = 200 * 1024   # Python, click, a 16 MiB read and its copy: about 80 MiB


def run_with_peak(args, env, stdin, tmp_path):
    """Run the CLI with `args`, stdin from `stdin` (a file, a pipe), within 60 s; returns
    (returncode, stderr, seconds, peak resident memory in KiB)."""
    peak_file = tmp_path / "peak"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WITH_PEAK_RSS, str(peak_file), *map(str, args)],
                          env=env, stdin=stdin, capture_output=True, timeout=60)
    return (done.returncode, done.stderr.decode(), time.perf_counter() - start,
            int(peak_file.read_text()))


def run_with_peak_on_yes(args, env, tmp_path):
    """run_with_peak with the endless output of `yes` piped into stdin (`yes | gpt2numba ...`);
    `yes` is stopped afterwards."""
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        return run_with_peak(args, env, yes.stdout, tmp_path)
    finally:
        yes.kill()
        yes.wait()
        yes.stdout.close()


def assert_refused_in_seconds(run, *words):
    """`run`, from run_with_peak: one error line with `words`, status 2, within 20 s and
    PEAK_BOUND_KIB: an input without end was refused, not read into memory."""
    code, err, seconds, peak = run
    assert_one_error_line(code, err, 2, *words)
    assert seconds < 20 and peak < PEAK_BOUND_KIB, (seconds, peak)


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
