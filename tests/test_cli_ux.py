"""What a user expects of `gpt2numba run`, `download` and the help (issue 13), and options and
prompts checked before anything is loaded (issue 10): each in a fresh process, as a user runs it.

Runs that must compile (the progress display, `download` warming the cache) use a
NUMBA_CACHE_DIR of their own, the session's compiled cache less a few kernels (progress names
every kernel of the step, cached or not: support/numba_cache.py); the others share the
session's, warmed once by conftest's `compiled_cache`.
"""

import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from gpt2numba.blocks import FORWARD_KERNELS
from gpt2numba.cli.run import summary_line
from gpt2numba.compiling import KERNELS
from gpt2numba.runtime import LoadReport
from support.cli import (
    assert_one_error_line,
    assert_refused_in_seconds,
    cli_env,
    read_terminal,
    run_cli,
    run_with_peak,
    run_with_peak_on_yes,
)
from support.numba_cache import copy_without

MIB = 2**20


@pytest.fixture(scope="module")
def greedy(tiny_model):
    return "Hello" + tiny_model.generate("Hello", 4) + "\n"


def test_the_prompt_can_be_an_argument_and_options_short(tiny_checkpoint, home, compiled_cache,
                                                         greedy):
    code, out, err = run_cli(["run", "Hello", "-m", tiny_checkpoint, "-n", 4], cli_env(home))
    assert code == 0, err
    assert out == greedy
    code, sampled, err = run_cli(["run", "-m", tiny_checkpoint, "-n", 4, "-t", 1.0, "-s", 3,
                                  "Hello"], cli_env(home))
    code_long, sampled_long, _ = run_cli(["run", "--model", tiny_checkpoint, "--prompt", "Hello",
                                          "--max-new-tokens", 4, "--temperature", 1.0,
                                          "--seed", 3], cli_env(home))
    assert code == code_long == 0, err
    assert sampled == sampled_long


def test_the_prompt_given_twice_is_one_usage_line(tiny_checkpoint, home):
    for extra in (["--prompt", "Bye"], ["--prompt-file", "-"]):
        code, out, err = run_cli(["run", "Hello", *extra, "-m", tiny_checkpoint], cli_env(home))
        assert_one_error_line(code, err, 2, "PROMPT", "--prompt")
        assert out == ""


def test_sampling_flags_without_a_temperature_say_so_and_run_greedy(tiny_checkpoint, home,
                                                                    compiled_cache, greedy):
    code, out, err = run_cli(["run", "Hello", "-m", tiny_checkpoint, "-n", 4, "--top-k", 40,
                              "--seed", 1], cli_env(home))
    assert code == 0, err
    assert out == greedy
    notice = [line for line in err.splitlines() if "no effect" in line]
    assert len(notice) == 1, err
    assert "--top-k" in notice[0] and "--seed" in notice[0] and "--temperature" in notice[0]
    code, _, err = run_cli(["run", "Hello", "-m", tiny_checkpoint, "-n", 2, "-t", 0.7,
                            "--top-k", 40], cli_env(home))
    assert code == 0 and "no effect" not in err


# The model is a folder that does not exist: an option checked only after loading would get
# the model's error instead of its own.
CHECKED_BEFORE_LOADING = {
    "negative seed": (["--seed", -1], "--seed"),
    "nan temperature": (["--temperature", "nan"], "--temperature"),
    "inf temperature": (["-t", "inf"], "--temperature"),
    "nan top_p": (["--top-p", "nan"], "--top-p"),
    "nan repetition penalty": (["--repetition-penalty", "nan"], "--repetition-penalty"),
    "empty stop string": (["--stop", "end", "--stop", ""], "--stop"),
}


@pytest.mark.parametrize("name", CHECKED_BEFORE_LOADING)
def test_options_are_checked_before_the_model_loads(home, name):
    args, option = CHECKED_BEFORE_LOADING[name]
    code, out, err = run_cli(["run", "Hi", "--model", "/no/such/model", *args], cli_env(home))
    assert_one_error_line(code, err, 2, option)
    assert "/no/such/model" not in err and out == ""


def test_an_empty_model_name_is_refused_not_the_current_folder(home, tmp_path):
    code, out, err = run_cli(["run", "Hi", "--model", ""], cli_env(home))
    assert_one_error_line(code, err, 2, "--model", "empty")


def test_help_summaries_are_whole(home):
    code, out, _ = run_cli(["--help"], cli_env(home))
    assert code == 0
    commands = out[out.index("Commands:"):].splitlines()[1:]
    assert len(commands) == 6 and not any(line.rstrip().endswith("...") for line in commands)
    code, out, _ = run_cli(["run", "--help"], cli_env(home))
    assert "[PROMPT]" in out and "-m, --model" in out and "-s, --seed" in out
    assert "16 MiB" in out


def test_endless_prompts_are_refused_in_seconds_within_bounded_memory(tiny_checkpoint, home,
                                                                      tmp_path):
    env = cli_env(home)
    assert_refused_in_seconds(run_with_peak(["run", "--prompt-file", "/dev/zero", "-m",
                                             tiny_checkpoint], env, subprocess.DEVNULL, tmp_path),
                              "--prompt-file", "16 MiB")
    assert_refused_in_seconds(run_with_peak_on_yes(["run", "--prompt", "-", "-m", tiny_checkpoint],
                                                   env, tmp_path), "--prompt", "16 MiB")
    # `yes | gpt2numba run`: no prompt option, so stdin is the prompt
    assert_refused_in_seconds(run_with_peak_on_yes(["run", "-m", tiny_checkpoint], env, tmp_path),
                              "stdin", "16 MiB")


def test_a_prompt_of_exactly_the_limit_is_read(tiny_checkpoint, home, tmp_path):
    """16 MiB is accepted (then refused as longer than the context, which is another matter)."""
    big = tmp_path / "big.txt"
    big.write_bytes(b"a " * (8 * MIB))
    code, _, err = run_cli(["run", "--prompt-file", big, "-m", tiny_checkpoint, "-n", 1],
                           cli_env(home))
    assert "16 MiB" not in err and "context" in err and code == 1, err


def test_reading_the_prompt_from_a_terminal_says_how_to_end_it(tiny_checkpoint, home,
                                                               compiled_cache):
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gpt2numba", "run", "--prompt", "-",
                                 "-m", str(tiny_checkpoint), "-n", "2"], env=cli_env(home),
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        os.write(master, b"Hello\n\x04")   # a line, then Ctrl-D at the start of the next
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert "Ctrl-D" in err.decode().splitlines()[0]
    assert out.decode().startswith("Hello")


def test_a_prompt_piped_into_stdin_needs_no_option(tiny_checkpoint, home, compiled_cache, greedy):
    """`echo Hello | gpt2numba run`, as `llm` and most Unix tools read stdin; the trailing
    newline dropped as for --prompt -. An empty stdin is still no prompt."""
    code, out, err = run_cli(["run", "-m", tiny_checkpoint, "-n", 4], cli_env(home),
                             stdin=b"Hello\n")
    assert code == 0, err
    assert out == greedy
    code, out, err = run_cli(["run", "-m", tiny_checkpoint, "-n", 4], cli_env(home), stdin=b"")
    assert_one_error_line(code, err, 2, "no prompt", "stdin")
    code, out, _ = run_cli(["run", "--help"], cli_env(home, COLUMNS=100))
    assert "piped" in out


def test_no_prompt_with_a_terminal_for_stdin_is_still_an_error(tiny_checkpoint, home):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gpt2numba", "run", "-m",
                             str(tiny_checkpoint)], env=cli_env(home), stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        os.close(slave)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:   # it waited for the terminal: stop it
            proc.kill()
            proc.wait()
    assert_one_error_line(proc.returncode, err.decode(), 2, "no prompt", "PROMPT")
    assert out == b""


def test_nan_logits_are_one_error_line(tiny_checkpoint, home, tmp_path, compiled_cache):
    """ln_f's gain at float32's largest value: every weight finite, every logit inf or NaN."""
    folder = tmp_path / "overflowing"
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        (folder / name).write_bytes((tiny_checkpoint / name).read_bytes())
    tensors = load_file(tiny_checkpoint / "model.safetensors")
    tensors["transformer.ln_f.weight"][:] = np.finfo(np.float32).max
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    for sampling in ([], ["-t", 1, "-s", 0]):
        code, out, err = run_cli(["run", "Hello", "-m", folder, "-n", 3, *sampling],
                                 cli_env(home))
        assert_one_error_line(code, err, 1, "not finite")
        assert out == "Hello\n"


def test_the_summary_times_download_load_and_compile_apart():
    class Stream:
        new_ids, seconds, first_token_seconds = [1, 2], 0.5, 0.1
        stopped_because = "max_new_tokens reached"

    line = summary_line(Stream, LoadReport(4.04, 0.8, 0.5), 11.5)
    assert ", download 4.0 s, load 0.8 s, compile 12.0 s, " in line
    line = summary_line(Stream, LoadReport(None, 0.8, None), None)
    assert "download" not in line and ", kernels cached, " in line


# -- compiling: progress, and download warming the cache ------------------------------------------

def test_compile_progress_on_a_terminal_is_a_bar(tiny_checkpoint, home, tmp_path,
                                                 compiled_cache):
    master, slave = pty.openpty()
    env = cli_env(home, NUMBA_CACHE_DIR=copy_without(compiled_cache, tmp_path / "cache"))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gpt2numba", "run", "Hi", "-m",
                                 str(tiny_checkpoint), "-n", "1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        output = read_terminal(master)
        proc.communicate(timeout=300)
    finally:
        os.close(master)
    terminal = output.decode()
    assert proc.returncode == 0, terminal
    assert "\r\x1b[Kgpt2numba: compiling kernels" in terminal
    n = len(FORWARD_KERNELS)   # what the first token waits for; the rest is for the next runs
    # kernel k of n, each once; the order depends on what a second process compiles
    shown = re.findall(r"\] (\d+)/(\d+) (\w+)", terminal)
    assert [int(k) for k, _, _ in shown] == list(range(1, n + 1))
    assert {int(total) for _, total, _ in shown} == {n}
    assert sorted(name for _, _, name in shown) == sorted(k.__name__ for k in FORWARD_KERNELS)
    assert "compiled the kernels in" in terminal


def test_download_compiles_the_kernels_with_progress_lines(hub, tiny_checkpoint, tmp_path,
                                                           compiled_cache):
    hub.add_repo("someone/tiny-gpt2", tiny_checkpoint)
    cache = copy_without(compiled_cache, tmp_path / "cache")
    code, out, err = run_cli(["download", "someone/tiny-gpt2"], hub.env(NUMBA_CACHE_DIR=cache))
    assert code == 0, err
    n = len(KERNELS)
    shown = re.findall(r"^gpt2numba: compiling kernel (\d+) of (\d+) \((\w+)\)$", err, re.M)
    assert [(int(k), int(total)) for k, total, _ in shown] == [(k, n) for k in range(1, n + 1)]
    assert sorted(name for _, _, name in shown) == sorted(k.__name__ for k in KERNELS)
    assert "s (cached for the next runs)\n" in err
    assert "\r" not in err and "\x1b[" not in err
    code, out, err = run_cli(["run", "Hi", "-m", "someone/tiny-gpt2", "-n", 2],
                             hub.env(offline=True, NUMBA_CACHE_DIR=cache))
    assert code == 0, err
    assert "compiling" not in err and err.rstrip().endswith("kernels cached, stopped: "
                                                            "max_new_tokens reached")
