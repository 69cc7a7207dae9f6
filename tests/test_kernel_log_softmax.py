"""log_softmax_at against log-softmax in float64 NumPy, gathered at the targets.

Tolerance: 2e-6 absolute plus 1e-7 relative on log p. The kernel's max and differences are
float32 (each difference within half an ulp), each exponential within 2 ulp, the sum and the
logarithm float64; its error in log p is a few 1e-7 at most, and a log p of -1e4 (a target far
below the maximum) is exact up to float64 rounding.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpt2numba.kernels import log_softmax_at


def log_softmax_reference(logits, targets):
    """log p(targets[i]) under softmax(logits[i]), float64, written out plainly."""
    x = logits.astype(np.float64)
    top = np.max(x, axis=1, keepdims=True)
    log_total = np.log(np.sum(np.exp(x - top), axis=1))
    return x[np.arange(len(x)), targets] - top[:, 0] - log_total


def check(logits, targets):
    out = log_softmax_at(logits, targets)
    assert out.dtype == np.float64 and out.shape == targets.shape
    np.testing.assert_allclose(out, log_softmax_reference(logits, targets), rtol=1e-7, atol=2e-6)
    return out


@pytest.mark.parametrize("n", [1, 7, 1024])
@pytest.mark.parametrize("vocab", [1, 17, 50257])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_matches_float64(n, vocab, scale):
    rng = np.random.default_rng(n * vocab)
    logits = (rng.standard_normal((n, vocab)) * scale).astype(np.float32)
    targets = rng.integers(0, vocab, n)
    out = check(logits, targets)
    if vocab == 1:
        assert np.all(out == 0)


def test_target_at_the_maximum_and_a_constant_row():
    logits = np.array([[0.0, 5.0, 1.0], [2.0, 2.0, 2.0]], np.float32)
    out = check(logits, np.array([1, 0]))
    assert out[1] == pytest.approx(-np.log(3), abs=1e-7)


def test_minus_inf_logits_have_probability_zero():
    logits = np.array([[0.0, -np.inf, 1.0, -np.inf], [-np.inf, -np.inf, 3.0, -np.inf]], np.float32)
    out = check(logits, np.array([0, 2]))
    assert out[1] == 0
    assert np.isneginf(log_softmax_at(logits, np.array([1, 3]))).all()


def test_huge_logits_do_not_overflow():
    big = np.float32(3e38)
    logits = np.array([[big, -big, big / 2, 0.0], [1e30, 1e30, -1e30, 1e30 - 1e24]], np.float32)
    out = check(logits, np.array([1, 0]))
    assert out[0] == pytest.approx(-2 * 3e38, rel=1e-6)
    assert out[1] == pytest.approx(-np.log(2), abs=1e-6)   # 1e30 - 1e24 is 13 ulp below 1e30


def test_all_minus_inf_row_is_nan_as_in_float64():
    logits = np.full((1, 5), -np.inf, np.float32)
    assert np.isnan(log_softmax_at(logits, np.array([2]))).all()
    with np.errstate(invalid="ignore"):  # -inf - -inf
        assert np.isnan(log_softmax_reference(logits, np.array([2]))).all()


def test_a_nan_logit_makes_its_row_nan():
    logits = np.zeros((3, 50257), np.float32)
    logits[0, 0] = logits[1, 20000] = np.nan          # the row's first entry, and one inside
    out = log_softmax_at(logits, np.array([1, 2, 3]))
    assert np.isnan(out[:2]).all() and out[2] == pytest.approx(-np.log(50257), abs=1e-6)


# A fresh process: compile on a small input, then make 1024 x 50257 logits (206 MB) and read
# the peak resident set (VmHWM) before and after the kernel runs on them.
PEAK_GROWTH = textwrap.dedent("""
    import json
    import numpy as np
    from gpt2numba.kernels import log_softmax_at
    from gpt2numba.bench import peak_rss_bytes

    log_softmax_at(np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    logits = np.random.default_rng(0).standard_normal((1024, 50257), dtype=np.float32)
    targets = np.arange(1024, dtype=np.int64)
    before = peak_rss_bytes() // 1024
    log_softmax_at(logits, targets)
    print(json.dumps({"before": before, "after": peak_rss_bytes() // 1024,
                      "logits": logits.nbytes // 1024}))
""")


def test_no_second_array_the_size_of_the_logits():
    run = subprocess.run([sys.executable, "-c", PEAK_GROWTH], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    m = json.loads(run.stdout.strip().splitlines()[-1])
    grown = m["after"] - m["before"]
    assert grown < 0.05 * m["logits"], f"peak grew {grown} KiB (logits: {m['logits']} KiB)"
