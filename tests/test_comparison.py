"""gpt2numba.compare against the same figures computed plainly in float64 from two
transformers.GPT2LMHeadModel's logits over the scoring recipe's windows (written again here),
within 1e-4 relative (1e-4 absolute near 0). Model A is conftest's tiny checkpoint (n_positions
128); model B another random one of the same vocabulary, smaller (1 layer, n_embd 32) and with
n_positions 48, so the windows are those of the smaller context.
"""

import json
import math

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

import gpt2numba
from gpt2numba import GPT2
from gpt2numba.errors import ArgumentError
from support import reference
from support.checkpoints import make_checkpoint

RTOL = 1e-4
ATOL = 1e-4
TIE = 1e-3   # a top choice this close to the second may differ from transformers' by rounding
TEXT = ("The observer and the performer read the same text, token by token, and each predicts "
        "the next one; where they disagree, the divergence grows. 1, 2, 3: naïve café! " * 2)


@pytest.fixture(scope="module")
def folder_b(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("compare-b"), n_layer=1, n_head=2, n_embd=32,
                           n_positions=48, seed=7)


@pytest.fixture(scope="module")
def model_b(folder_b):
    return GPT2.from_pretrained(folder_b)


def window_logits(oracle, ids, n_positions, stride):
    """[N - 1, vocab] float64 logits predicting tokens 1..N-1: window k takes ids[b:e],
    b = k * stride, e = min(b + n_positions, N - 1), and gives its rows after the last one an
    earlier window gave."""
    n = len(ids)
    rows = np.full((n - 1, oracle.config.vocab_size), np.nan)
    done = 0
    for begin in range(0, n - 1, stride):
        end = min(begin + n_positions, n - 1)
        with torch.no_grad():
            logits = oracle(torch.tensor([ids[begin:end]])).logits[0].double().numpy()
        rows[done:end] = logits[done - begin:]
        done = end
        if end == n - 1:
            break
    assert not np.isnan(rows).any()
    return rows


def top_gap(logp):
    """[N - 1]: the margin of each row's likeliest token over the second."""
    best = -np.sort(-logp, axis=1)[:, :2]
    return best[:, 0] - best[:, 1]


@pytest.mark.parametrize("stride", [48, 20])
def test_matches_a_plain_computation_from_transformers(tiny_model, model_b, tiny_checkpoint,
                                                       folder_b, stride):
    ids = tiny_model.tokenizer.encode(TEXT)
    assert len(ids) > 48    # several windows
    logp = {}
    for name, folder in (("a", tiny_checkpoint), ("b", folder_b)):
        oracle = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        logp[name] = reference.log_softmax(window_logits(oracle, ids, 48, stride))
    targets = (np.arange(len(ids) - 1), ids[1:])
    nll_a, nll_b = -logp["a"][targets].sum(), -logp["b"][targets].sum()
    p_a = np.exp(logp["a"])
    kl = np.sum(p_a * (logp["a"] - logp["b"]), axis=1)
    cross = -np.sum(p_a * logp["b"], axis=1)
    tokens = len(ids) - 1

    got = gpt2numba.compare(tiny_model, model_b, TEXT, stride=stride)
    assert got.tokens == tokens
    assert got.nll_a == pytest.approx(nll_a, rel=RTOL)
    assert got.nll_b == pytest.approx(nll_b, rel=RTOL)
    assert got.perplexity_a == pytest.approx(math.exp(nll_a / tokens), rel=RTOL)
    assert got.perplexity_b == pytest.approx(math.exp(nll_b / tokens), rel=RTOL)
    np.testing.assert_allclose(got.kl, kl, rtol=RTOL, atol=ATOL)
    assert got.kl_mean == pytest.approx(kl.mean(), rel=RTOL)
    assert got.kl_max == pytest.approx(kl.max(), rel=RTOL)
    agree = np.argmax(logp["a"], axis=1) == np.argmax(logp["b"], axis=1)
    near_ties = np.sum((top_gap(logp["a"]) < TIE) | (top_gap(logp["b"]) < TIE))
    assert abs(got.top1_agreement * tokens - agree.sum()) <= near_ties + 1e-9
    assert got.log_cross_perplexity == pytest.approx(cross.mean(), rel=RTOL)
    assert got.cross_perplexity == pytest.approx(math.exp(cross.mean()), rel=RTOL)
    assert got.binoculars == pytest.approx((nll_b / tokens) / cross.mean(), rel=RTOL)
    assert json.loads(json.dumps(got.as_dict()))["tokens"] == tokens


def test_a_model_against_itself(tiny_model):
    same = gpt2numba.compare(tiny_model, tiny_model, TEXT)
    assert same.kl_max == 0 and same.top1_agreement == 1 and same.nll_a == same.nll_b


@pytest.fixture(scope="module")
def other_vocabulary(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with two tokens of vocab.json swapped: same size, other tokens."""
    import shutil

    folder = tmp_path_factory.mktemp("other-vocab")
    for path in tiny_checkpoint.iterdir():
        shutil.copyfile(path, folder / path.name)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    vocab["hello"], vocab["world"] = vocab["world"], vocab["hello"]
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    return GPT2.from_pretrained(folder)


def test_models_of_different_vocabularies_are_refused(tiny_model, other_vocabulary):
    with pytest.raises(ArgumentError, match="different vocabularies") as error:
        gpt2numba.compare(tiny_model, other_vocabulary, TEXT)
    assert error.value.argument == "model_b"


def test_bad_stride_and_short_text_are_argument_errors(tiny_model, model_b):
    with pytest.raises(ArgumentError, match=r"1\.\.48") as error:
        gpt2numba.compare(tiny_model, model_b, TEXT, stride=49)
    assert error.value.argument == "stride"
    with pytest.raises(ArgumentError) as error:
        gpt2numba.compare(tiny_model, model_b, "a")
    assert error.value.argument == "text"
