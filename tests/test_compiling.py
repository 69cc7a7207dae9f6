"""gpt2numba.compile(): every kernel of load, forward and scoring compiled ahead, with the types
the model passes (a fresh process then compiles nothing); the notice of a first forward that
compiles."""

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap

import gpt2numba
from gpt2numba import compiling
from support.numba_cache import copy_without

COMPILE = textwrap.dedent("""
    import gpt2numba
    gpt2numba.compile(progress=lambda k, n, name: print(k, n, name, flush=True))
""")

# Load, forward (every position and last row only), score: what Numba compiled meanwhile.
USE = textwrap.dedent("""
    import json, sys
    from gpt2numba import GPT2
    from gpt2numba.compiling import KERNELS
    from gpt2numba.kernels.cache import all_cached, recording_compiles

    cached = all_cached(KERNELS)
    with recording_compiles() as compiles:
        model = GPT2.from_pretrained(sys.argv[1])
        model.logits(list(range(1000, 1009)))
        model.next_token_logits(list(range(1000, 1009)))
        model.score_ids(list(range(1000, 1300)), 64)
    print(json.dumps({"cached_before": cached, "compiles": len(compiles)}))
""")


def test_compile_leaves_every_kernel_cached_for_a_fresh_process(tiny_checkpoint, compiled_cache):
    """From the session's compiled cache less a few kernels (support/numba_cache.py): compile()
    names every kernel, compiles those, and the model's load, forward and scoring in a fresh
    process then find every kernel with their types (the cache's other entries were written by
    compile() too, in this process)."""
    with tempfile.TemporaryDirectory(prefix="gpt2numba-test-compile-") as cache:
        copy_without(compiled_cache, cache)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, "-c", COMPILE], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        n = len(compiling.KERNELS)
        lines = [line.split() for line in done.stdout.splitlines()]
        assert [(k, total) for k, total, _ in lines] == [(str(k), str(n)) for k in range(1, n + 1)]
        assert sorted(name for _, _, name in lines) == sorted(k.__name__ for k in compiling.KERNELS)
        done = subprocess.run([sys.executable, "-c", USE, str(tiny_checkpoint)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"cached_before": True, "compiles": 0}


def test_compile_is_the_package_function():
    assert gpt2numba.compile is compiling.compile
    assert "compile" in gpt2numba.__all__


def test_a_first_forward_that_compiles_logs_one_info_record(tiny_model, caplog, monkeypatch):
    """The kernels are in this session's cache by now: the cold state is what all_cached says."""
    monkeypatch.setattr(compiling, "_first_forward_checked", False)
    monkeypatch.setattr(compiling, "all_cached", lambda kernels: False)
    with caplog.at_level(logging.INFO, logger="gpt2numba"):
        tiny_model.next_token_logits([464, 3290])
        tiny_model.logits([464, 3290])
    records = [r for r in caplog.records if r.name == "gpt2numba"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "compiling" in records[0].getMessage()
    assert "gpt2numba.compile()" in records[0].getMessage()


def test_no_notice_after_compile(tiny_model, caplog, monkeypatch):
    monkeypatch.setattr(compiling, "_first_forward_checked", False)
    monkeypatch.setattr(compiling, "all_cached", lambda kernels: False)
    gpt2numba.compile()
    with caplog.at_level(logging.INFO, logger="gpt2numba"):
        tiny_model.next_token_logits([464, 3290])
    assert [r for r in caplog.records if r.name == "gpt2numba"] == []
