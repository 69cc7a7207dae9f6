"""`gpt2numba download` and `gpt2numba bench` as a user runs them, in fresh processes."""

import json
from pathlib import Path

from support.cli import assert_one_error_line, cli_env, console_script, run_cli, users_env
from support.paths import REPO_ROOT


def test_download_then_run_offline(hub, tiny_checkpoint, tiny_model):
    hub.add_repo("someone/tiny-gpt2", tiny_checkpoint)
    code, out, err = run_cli(["download", "someone/tiny-gpt2"], hub.env())
    assert code == 0, err
    folder = out.strip()
    assert folder.startswith(str(hub.home)) and "Traceback" not in err
    assert sorted(p.name for p in Path(folder).iterdir()) == [
        "config.json", "merges.txt", "model.safetensors", "vocab.json"]
    hub.clear()
    code, out, err = run_cli(["run", "--model", "someone/tiny-gpt2", "--prompt", "Hi",
                              "--max-new-tokens", 3], hub.env(offline=True))
    assert code == 0, err
    assert out == "Hi" + tiny_model.generate("Hi", 3) + "\n"
    assert hub.requests == []


def test_download_of_an_unknown_repo_is_one_error_line(hub):
    code, _, err = run_cli(["download", "someone/no-such-model"], hub.env())
    assert_one_error_line(code, err, 1, "someone/no-such-model")


def test_bench_reports_cold_cached_and_warm_as_json_and_a_plot(tiny_checkpoint, home,
                                                               tmp_path):
    # Run in the clone's root, as its user may: the children (cold, cached and transformers'
    # starts) must not import the root's kernels/ in place of PyPI's, which transformers needs.
    plot = tmp_path / "bench.png"
    code, out, err = run_cli(["bench", "--model", tiny_checkpoint, "--repeats", 2, "--threads", 1,
                              "--json", "--plot", plot], users_env(cli_env(home)),
                             command=console_script(), cwd=REPO_ROOT, timeout=600)
    assert code == 0, err
    report = json.loads(out)
    assert report["threads"] == 1 and report["threading_layer"] == "tbb"
    assert report["load_average"] >= 0 and report["others_busy_cores"] >= 0
    # n_positions is 128 in this checkpoint: the 512 and 1024-token forwards are left out
    assert sorted(report["forward"], key=int) == ["16", "128"]
    for spread in report["forward"].values():
        assert 0 < spread["min"] <= spread["median"] <= spread["max"]
    assert report["generate_tokens_per_s"] > 0
    for start in ("cold", "cached"):
        assert report[start]["to_first_token_s"] >= report[start]["first_forward_s"] > 0
        assert report[start]["peak_rss_mib"] > 0
    # the cold start compiles every kernel (tens of seconds); the cached one only loads them
    assert report["cold"]["compile_s"] > report["cached"]["compile_s"]
    assert "fresh process, empty JIT cache" in err
    assert "compiling kernel 1 of" in err   # the cold process's progress, passed on
    # transformers is installed with the test extra: the plot compares against it
    assert sorted(report["transformers"]["forward"], key=int) == ["16", "128"]
    data = plot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(data) < 200_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 320)


def test_bench_plot_without_matplotlib_is_one_line_before_any_work(tmp_path, home):
    hidden = tmp_path / "no-matplotlib" / "matplotlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    env = cli_env(home, PYTHONPATH=hidden.parent)
    code, out, err = run_cli(["bench", "--model", "/no/such/folder", "--plot", tmp_path / "b.png"],
                             env)
    assert_one_error_line(code, err, 2, "--plot", "matplotlib", "gpt2numba[plot]")
    assert not (tmp_path / "b.png").exists()


def test_bench_errors_are_one_line(home):
    code, _, err = run_cli(["bench", "--model", "/no/such/folder"], cli_env(home))
    assert_one_error_line(code, err, 1, "/no/such/folder")
    code, _, err = run_cli(["bench", "--repeats", 0], cli_env(home))
    assert_one_error_line(code, err, 2, "--repeats")
