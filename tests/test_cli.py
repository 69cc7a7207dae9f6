"""The `gpt2numba` command line as a user runs it: a fresh process, real files, real pipes.

Every run is a subprocess of the installed CLI (`python -m gpt2numba`, and once the `gpt2numba`
console script) on a small random GPT-2 written by transformers (n_positions=128), and what it
prints is compared with the library computing the same thing in this process. The Numba cache
(NUMBA_CACHE_DIR, set by conftest) is shared with the subprocesses, so only the first run
compiles. Hub runs go to the local fake Hub (tests/support/hub_server.py).
"""

import os
import pty
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gpt2numba import GPT2
from gpt2numba.blocks import FORWARD_KERNELS
from gpt2numba.compiling import KERNELS
from gpt2numba.kernels import first_nonfinite, pack_checked
from gpt2numba.kernels.cache import all_cached
from support.cli import (
    assert_one_error_line,
    cli_env,
    console_script,
    read_terminal,
    run_cli,
)

N_POSITIONS = 128   # of conftest's tiny_checkpoint
SUMMARY = re.compile(r"gpt2numba: (?P<n>\d+) tokens? in \d+\.\d\d s( \(\d+\.\d tokens/s\))?, "
                     r"(first token \d+\.\d\d s, )?(download \d+\.\d s, )?load \d+\.\d s, "
                     r"(?P<compile>compile \d+\.\d s|kernels cached), stopped: (?P<reason>.+)")
ANSI = "\x1b["
def summary(stderr):
    """The summary match of the last stderr line (fails the test if there is none)."""
    last = stderr.rstrip("\n").splitlines()[-1]
    match = SUMMARY.fullmatch(last)
    assert match, f"no summary line at the end of stderr:\n{stderr}"
    return match


def prompt_of_tokens(tokenizer, n):
    """A prompt of exactly `n` tokens."""
    words = " ".join(f"word{i}" for i in range(n))
    ids = tokenizer.encode(words)[:n]
    text = tokenizer.decode(ids)
    assert len(tokenizer.encode(text)) == n
    return text


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def first_run(tiny_checkpoint, home):
    """The module's first CLI run (it compiles the kernels if the session's cache is cold)."""
    # the CLI looks after loading, which has compiled (and cached) the load's own kernels
    cached_before = all_cached(k for k in KERNELS if k not in (first_nonfinite, pack_checked))
    result = run_cli(["run", "--model", tiny_checkpoint, "--prompt", "Hello",
                      "--max-new-tokens", 8], cli_env(home))
    return cached_before, result


@pytest.fixture(scope="module")
def model(tiny_checkpoint, first_run):
    """The same checkpoint in this process (after first_run, so it loads the cached kernels)."""
    return GPT2.from_pretrained(tiny_checkpoint)


# -- generating -----------------------------------------------------------------------------------

def test_greedy_run_prints_prompt_and_the_libraries_continuation(first_run, model):
    cached_before, (code, out, err) = first_run
    assert code == 0, err
    assert out == "Hello" + model.generate("Hello", 8) + "\n"
    assert ANSI not in out  # stdout is a pipe
    line = summary(err)
    assert line["n"] == "8" and line["reason"] == "max_new_tokens reached"
    # The first-run notice follows the cache heuristic; a cold cache really compiles.
    assert ("compiling kernels (first run only" in err) == (not cached_before), err
    if not cached_before:
        assert line["compile"].startswith("compile ")
    assert "Traceback" not in err and "Warning" not in err


def test_kernel_cache_detection_follows_numba_cache_dir(first_run, home, tmp_path):
    assert all_cached(FORWARD_KERNELS)  # after first_run, in the session's NUMBA_CACHE_DIR
    code = ("from gpt2numba.blocks import FORWARD_KERNELS; "
            "from gpt2numba.kernels.cache import all_cached; print(all_cached(FORWARD_KERNELS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(home, NUMBA_CACHE_DIR=tmp_path / "empty-cache"),
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_sampling_is_seeded_and_reads_stdin_and_prompt_files(tiny_checkpoint, model, home,
                                                              tmp_path):
    options = ["--max-new-tokens", 8, "--temperature", 1, "--top-k", 100, "--top-p", 0.9,
               "--repetition-penalty", 1.2, "--seed", 3, "--threads", 1]
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Hello\n", encoding="utf-8")  # the trailing newline is dropped
    with ThreadPoolExecutor(2) as pool:
        from_stdin = pool.submit(run_cli, ["run", "--model", tiny_checkpoint, "--prompt", "-",
                                           *options], cli_env(home), stdin=b"Hello\n",
                                 command=console_script())
        from_file = pool.submit(run_cli, ["run", "--model", tiny_checkpoint, "--prompt-file",
                                          prompt_file, *options], cli_env(home))
    expected = "Hello" + model.generate("Hello", 8, temperature=1.0, top_k=100, top_p=0.9,
                                        repetition_penalty=1.2, seed=3) + "\n"
    for code, out, err in (from_stdin.result(), from_file.result()):
        assert code == 0, err
        assert out == expected
        assert summary(err)["n"] == "8"


def test_stop_strings_end_the_text_and_are_not_printed(tiny_checkpoint, model, home):
    full = model.generate("Hello", 8)
    stop = full[len(full) // 2:len(full) // 2 + 3]
    code, out, err = run_cli(["run", "--model", tiny_checkpoint, "--prompt", "Hello",
                              "--max-new-tokens", 8, "--stop", "never written", "--stop", stop],
                             cli_env(home))
    assert code == 0, err
    assert out == "Hello" + full[:full.index(stop)] + "\n"
    assert summary(err)["reason"] == "a stop string was written"


def test_context_limit_stops_with_a_notice_and_slide_keeps_going(tiny_checkpoint, model, home):
    prompt = prompt_of_tokens(model.tokenizer, 120)
    args = ["run", "--model", tiny_checkpoint, "--prompt", prompt, "--max-new-tokens", 20]
    with ThreadPoolExecutor(2) as pool:
        stopped = pool.submit(run_cli, args, cli_env(home))
        slid = pool.submit(run_cli, [*args, "--slide"], cli_env(home))

    code, out, err = stopped.result()
    assert code == 0, err
    assert summary(err)["n"] == "8" and summary(err)["reason"] == "the context window is full"
    notice = err.splitlines()[-2]
    assert "128-token context" in notice and "--slide" in notice and "8 new tokens" in notice
    with pytest.warns(UserWarning):
        assert out == prompt + model.generate(prompt, 20) + "\n"

    code, out, err = slid.result()
    assert code == 0, err
    assert summary(err)["n"] == "20" and summary(err)["reason"] == "max_new_tokens reached"
    assert out == prompt + model.generate(prompt, 20, slide=True) + "\n"


def test_colour_on_a_terminal_only(tiny_checkpoint, home, first_run):
    """On a terminal the continuation is cyan; NO_COLOR turns that off."""
    args = ["run", "--model", tiny_checkpoint, "--prompt", "Hello", "--max-new-tokens", 3]
    coloured = run_on_terminal(args, cli_env(home))
    plain = run_on_terminal(args, cli_env(home, NO_COLOR=1))
    assert coloured.startswith("Hello\x1b[36m"), coloured
    assert ANSI not in plain and plain.startswith("Hello")


def run_on_terminal(args, env):
    """Run the CLI with stdout on a pseudo-terminal; return what it wrote there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gpt2numba", *map(str, args)], env=env,
                                stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        output = read_terminal(master)
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    finally:
        os.close(master)
    return output.decode("utf-8")


def test_ctrl_c_exits_130_and_a_closed_pipe_exits_quietly(tiny_checkpoint, home, first_run):
    args = [sys.executable, "-m", "gpt2numba", "run", "--model", str(tiny_checkpoint), "--prompt",
            "Hello", "--max-new-tokens", 5000, "--slide"]
    args = list(map(str, args))
    # stdout and stderr in one pipe, as on a terminal: the notice must start a line of its own
    interrupted = subprocess.Popen(args, env=cli_env(home), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cut = subprocess.Popen(args, env=cli_env(home), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert interrupted.stdout.read(5) == b"Hello"  # generating now
        time.sleep(0.5)
        interrupted.send_signal(signal.SIGINT)
        rest, _ = interrupted.communicate(timeout=60)
        text, _, notice = ("Hello" + rest.decode()).rpartition("gpt2numba: interrupted")
        assert interrupted.returncode == 130, rest
        assert notice == "\n" and text.endswith("\n"), rest[-200:]
        assert "Traceback" not in text and "gpt2numba:" not in text

        assert cut.stdout.read(5) == b"Hello"  # like `| head -c 5`
        cut.stdout.close()
        err = cut.stderr.read().decode()
        assert cut.wait(timeout=60) == 141, err
        assert err == ""  # no traceback, no "Exception ignored", no summary
    finally:
        for proc in (interrupted, cut):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# -- errors ---------------------------------------------------------------------------------------

def test_a_prompt_longer_than_the_context_is_one_error_line(tiny_checkpoint, model, home):
    prompt = prompt_of_tokens(model.tokenizer, 130)
    code, out, err = run_cli(["run", "--model", tiny_checkpoint, "--prompt", prompt], cli_env(home))
    assert_one_error_line(code, err, 1, "130 tokens", "128", "--slide")
    assert out == ""


BAD_USAGE = {  # name: (arguments after `run --model FOLDER`, words of the error line)
    "negative temperature": (["--prompt", "x", "--temperature", -1], ["--temperature"]),
    "nan temperature": (["--prompt", "x", "--temperature", "nan"], ["--temperature", "nan"]),
    "top_p 0": (["--prompt", "x", "--top-p", 0], ["--top-p"]),
    "top_p above 1": (["--prompt", "x", "--top-p", 1.5], ["--top-p"]),
    "negative top_k": (["--prompt", "x", "--top-k", -1], ["--top-k"]),
    "zero repetition penalty": (["--prompt", "x", "--repetition-penalty", 0],
                                ["--repetition-penalty"]),
    "negative max_new_tokens": (["--prompt", "x", "--max-new-tokens", -1], ["--max-new-tokens"]),
    "zero threads": (["--prompt", "x", "--threads", 0], ["--threads"]),
    "too many threads": (["--prompt", "x", "--threads", 4096], ["--threads", "NUMBA_NUM_THREADS"]),
    "no prompt": ([], ["--prompt", "--prompt-file"]),
    "two prompts": (["--prompt", "x", "--prompt-file", "{file}"], ["not both"]),
    "missing prompt file": (["--prompt-file", "{missing}"], ["--prompt-file", "does not exist"]),
    "prompt file is a folder": (["--prompt-file", "{folder}"], ["--prompt-file", "directory"]),
    "prompt file not UTF-8": (["--prompt-file", "{latin1}"], ["--prompt-file", "not UTF-8"]),
    "unknown option": (["--prompt", "x", "--temprature", 1], ["--temprature"]),
}


@pytest.fixture(scope="module")
def bad_usage_results(tiny_checkpoint, home, tmp_path_factory):
    """Every BAD_USAGE run, two at a time."""
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "ok.txt").write_text("Hello", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    paths = {"file": folder / "ok.txt", "missing": folder / "missing.txt", "folder": folder,
             "latin1": folder / "latin1.txt"}

    def one(name):
        args = [str(a).format(**paths) for a in BAD_USAGE[name][0]]
        return run_cli(["run", "--model", tiny_checkpoint, *args], cli_env(home))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(BAD_USAGE, pool.map(one, BAD_USAGE)))


@pytest.mark.parametrize("name", BAD_USAGE)
def test_bad_usage_is_one_error_line_and_exit_2(bad_usage_results, name):
    code, out, err = bad_usage_results[name]
    assert_one_error_line(code, err, 2, *BAD_USAGE[name][1])
    assert out == ""


def test_help_explains_every_option_with_defaults(home):
    code, out, err = run_cli(["--help"], cli_env(home, COLUMNS=100))
    assert code == 0, err
    assert "run" in out and "Example" in out and "gpt2numba run --prompt" in out
    code, out, err = run_cli(["run", "--help"], cli_env(home, COLUMNS=100))
    assert code == 0, err
    for option in ("--prompt", "--prompt-file", "--model", "--revision", "--max-new-tokens",
                   "--temperature", "--top-k", "--top-p", "--repetition-penalty", "--seed",
                   "--stop", "--threads", "--no-color", "--slide", "--no-eos-stop"):
        assert option in out, option
    for default in ("[default: gpt2]", "[default: 50; x>=0]", "[default: 0.0; x>=0]",
                    "[default: 1.0; 0<x<=1]"):
        assert default in out, default
    assert "Example" in out


# -- the Hub --------------------------------------------------------------------------------------

def test_default_model_downloads_from_the_hub_then_runs_offline(hub, tiny_checkpoint, model):
    hub.add_repo("openai-community/gpt2", tiny_checkpoint)
    args = ["run", "--prompt", "Hi", "--max-new-tokens", 4]
    code, online_out, err = run_cli(args, hub.env())
    assert code == 0, err
    assert online_out == "Hi" + model.generate("Hi", 4) + "\n"
    assert any(method == "GET" and path.startswith("/openai-community/gpt2/resolve/")
               and path.endswith("/model.safetensors") for method, path in hub.requests)
    assert summary(err)["n"] == "4"

    hub.clear()
    code, offline_out, err = run_cli(args, hub.env(offline=True))
    assert code == 0, err
    assert offline_out == online_out
    assert hub.requests == []


def test_the_summary_says_download_only_when_files_came_over_the_network(hub, tiny_checkpoint,
                                                                         model):
    """Resolving a cached model against a slow Hub took long enough to be called a download."""
    hub.add_repo("someone/tiny-gpt2", tiny_checkpoint)
    hub.delay = 0.3
    args = ["run", "--prompt", "Hi", "-n", 2, "--model", "someone/tiny-gpt2"]
    runs = {"first": hub.env(), "cached": hub.env(), "offline": hub.env(offline=True)}
    summaries, requests = {}, {}
    for name, env in runs.items():
        hub.clear()
        code, _, err = run_cli(args, env)
        assert code == 0, err
        summaries[name], requests[name] = err.splitlines()[-1], len(hub.requests)
    assert "download" in summaries["first"], summaries
    assert "download" not in summaries["cached"], summaries
    assert "download" not in summaries["offline"], summaries
    assert requests["cached"] > 0 and requests["offline"] == 0, requests


def test_hub_failures_are_one_error_line_and_exit_1(hub, tiny_checkpoint):
    hub.add_repo("someone/tiny-gpt2", tiny_checkpoint)
    cases = {
        "unknown repo": (["--model", "someone/no-such-model"], hub.env(), ["does not exist"]),
        "unknown revision": (["--model", "someone/tiny-gpt2", "--revision", "v9"], hub.env(),
                             ["revision", "v9"]),
        "offline, not cached": (["--model", "someone/tiny-gpt2"], hub.env(offline=True),
                                ["not in the local cache", "HF_HUB_OFFLINE"]),
    }

    def one(case):
        args, env, _ = cases[case]
        return run_cli(["run", "--prompt", "Hi", "--max-new-tokens", 2, *args], env)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(one, cases)))
    for case, (code, out, err) in results.items():
        assert_one_error_line(code, err, 1, *cases[case][2])
        assert out == "", case
