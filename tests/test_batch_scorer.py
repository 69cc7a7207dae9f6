"""BatchScorer on the batches engines hand it, in this process (no engine): Ray Data's dict of
numpy arrays and a pandas DataFrame; null scores for what cannot be scored; the cache lock."""

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TEXTS = ["It was a bright cold day in April.", "", "a", None, "The clocks were striking thirteen."]


@pytest.fixture(scope="module")
def scorer(tiny_checkpoint):
    from gpt2numba.batch_scorer import BatchScorer

    return BatchScorer(str(tiny_checkpoint), threads=1, token_logprobs=True)


def assert_scores(scorer, texts, tokens, nll, perplexity, bits, logprobs):
    """Each column against the model's own score (a Score computed here) and the definitions:
    perplexity exp(nll / tokens), bits per byte nll / (ln 2 x UTF-8 bytes); None where the
    text has fewer than 2 tokens or is None."""
    for i, text in enumerate(texts):
        if text is None or len(scorer.model.tokenizer.encode(text)) < 2:
            assert tokens[i] is None or pd.isna(tokens[i])
            assert all(column[i] is None or pd.isna(column[i]) for column in (nll, perplexity,
                                                                             bits, logprobs))
            continue
        want = scorer.model.score(text)
        assert tokens[i] == want.tokens
        assert math.isclose(nll[i], want.nll, rel_tol=1e-12)
        assert math.isclose(nll[i], -float(np.sum(np.asarray(logprobs[i], np.float64))),
                            rel_tol=1e-9)
        assert math.isclose(perplexity[i], math.exp(nll[i] / tokens[i]), rel_tol=1e-9)
        assert math.isclose(bits[i], nll[i] / (math.log(2) * len(text.encode("utf-8"))),
                            rel_tol=1e-12)


def test_a_dict_of_numpy_arrays_gets_score_columns(scorer):
    batch = {"id": np.arange(len(TEXTS)), "text": np.array(TEXTS, dtype=object)}
    out = scorer(batch)
    assert list(out) == ["id", "text", "tokens", "nll", "perplexity", "bits_per_byte",
                         "token_logprobs"]
    assert out["id"] is batch["id"]
    assert_scores(scorer, TEXTS, out["tokens"], out["nll"], out["perplexity"],
                  out["bits_per_byte"], out["token_logprobs"])


def test_a_dataframe_gets_nullable_columns_whatever_its_index(scorer):
    frame = pd.DataFrame({"body": TEXTS}, index=[10, 3, 7, 1, 0])
    scorer.text_column = "body"
    try:
        out = scorer(frame)
    finally:
        scorer.text_column = "text"
    assert out.index.tolist() == [10, 3, 7, 1, 0]
    assert str(out["tokens"].dtype) == "Int64" and str(out["nll"].dtype) == "Float64"
    assert_scores(scorer, TEXTS, *(out[name].tolist() for name in (
        "tokens", "nll", "perplexity", "bits_per_byte", "token_logprobs")))


def test_a_batch_of_scorable_texts_has_plain_numeric_columns(scorer):
    out = scorer({"text": np.array(["one text here", "and another one"], dtype=object)})
    assert out["tokens"].dtype == np.int64 and out["nll"].dtype == np.float64


def test_an_empty_batch_gives_an_empty_batch(scorer):
    out = scorer({"text": np.array([], dtype=object)})
    assert all(len(column) == 0 for column in out.values())
    assert "bits_per_byte" in out
    assert len(scorer(pd.DataFrame({"text": []}))) == 0


def test_a_missing_column_or_a_text_that_is_not_a_string_is_named(scorer):
    from gpt2numba import ArgumentError

    with pytest.raises(ArgumentError, match="no column 'text'.*text_column"):
        scorer({"body": np.array(["x y"], dtype=object)})
    with pytest.raises(ArgumentError, match="text 1 of the batch is a int"):
        scorer({"text": np.array(["x y", 5], dtype=object)})


HOLD_THE_LOCK = """
import sys
from gpt2numba.compiling import KERNELS
from gpt2numba.kernels.cache import cache_lock
with cache_lock(KERNELS):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_the_cache_lock_makes_a_second_process_wait():
    """Two processes on one cache folder (this one's NUMBA_CACHE_DIR): the second enters the
    lock only once the first has left it."""
    from gpt2numba.compiling import KERNELS
    from gpt2numba.kernels.cache import LOCK_FILE, cache_lock

    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        threading.Timer(1.0, lambda: holder.stdin.close()).start()
        start = time.monotonic()
        with cache_lock(KERNELS):
            waited = time.monotonic() - start
        assert waited >= 0.9
        assert (Path(KERNELS[0]._cache.cache_path) / LOCK_FILE).is_file()
    finally:
        holder.kill()
        holder.wait()
