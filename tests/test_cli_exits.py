"""Every way the command line ends is clean: Ctrl-C at any moment, import included, and a
stdout that is full or closed. One line on stderr, the right status, never a traceback.
"""

import os
import signal
import subprocess
import sys

import pytest

INTERRUPTED = "gpt2numba: interrupted"


def interrupt_when_importing(module, args, env=None):
    """Run `python -X importtime -m gpt2numba ARGS`, send SIGINT as soon as `module` starts to
    be imported (importtime reports each import on stderr as it finishes, innermost first, so
    the first line naming `module` or one of its submodules is printed while it loads), and
    return (status, stderr lines other than importtime's)."""
    process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "gpt2numba", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    other_lines = []
    try:
        for line in process.stderr:
            if line.startswith("import time:"):
                if line.rstrip().split("|")[-1].strip().split(".")[0] == module:
                    process.send_signal(signal.SIGINT)
                    break
            else:
                other_lines.append(line.rstrip("\n"))
        rest = process.stderr.read()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    other_lines += [line for line in rest.splitlines() if not line.startswith("import time:")]
    return process.returncode, other_lines


@pytest.mark.parametrize("module", ["click", "numpy", "numba"])
def test_ctrl_c_while_the_program_imports(module, tiny_checkpoint, home):
    env = dict(os.environ, HF_HOME=str(home))
    status, stderr = interrupt_when_importing(
        module, ["run", "--model", str(tiny_checkpoint), "--prompt", "Hello"], env)
    assert (status, stderr) == (130, [INTERRUPTED])


@pytest.mark.parametrize("target", ["/dev/full", "closed"])
def test_stdout_full_or_closed_is_one_line_and_status_1(target, tiny_checkpoint, home):
    env = dict(os.environ, HF_HOME=str(home))
    command = [sys.executable, "-m", "gpt2numba", "run", "--model", str(tiny_checkpoint),
               "--prompt", "Hello", "--max-new-tokens", "3"]
    if target == "closed":
        command = ["sh", "-c", 'exec "$@" >&-', "sh", *command]
        run = subprocess.run(command, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    else:
        with open(target, "w") as full:
            run = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True,
                                 env=env, timeout=300)
    lines = run.stderr.splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert [line for line in lines if line.startswith("gpt2numba: error:")] == lines[-1:]
    assert "stdout" in lines[-1]


@pytest.mark.parametrize("mode", [[], ["--json"], ["--per-token"]])
def test_score_to_a_full_stdout_is_one_line_and_status_1(mode, tiny_checkpoint, home, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("Some words to score, and a few more of them.", encoding="utf-8")
    env = dict(os.environ, HF_HOME=str(home))
    command = [sys.executable, "-m", "gpt2numba", "score", "--model", str(tiny_checkpoint),
               str(text), *mode]
    with open("/dev/full", "w") as full:
        run = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env,
                             timeout=300)
    lines = run.stderr.splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert [line for line in lines if line.startswith("gpt2numba: error:")] == lines[-1:]
    assert lines[-1].startswith("gpt2numba: error: cannot write to stdout"), lines[-1]


def test_download_to_a_full_stdout_is_one_line_and_status_1(hub, tiny_checkpoint):
    hub.add_repo("someone/tiny-gpt2", tiny_checkpoint)
    command = [sys.executable, "-m", "gpt2numba", "download", "someone/tiny-gpt2"]
    with open("/dev/full", "w") as full:
        run = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True,
                             env=hub.env(), timeout=300)
    lines = run.stderr.splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert [line for line in lines if line.startswith("gpt2numba: error:")] == lines[-1:]
    assert lines[-1].startswith("gpt2numba: error: cannot write to stdout"), lines[-1]
