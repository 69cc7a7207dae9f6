"""`gpt2numba score --per-word / --per-token --top-k` and `gpt2numba compare`, as a user runs
them: their output parsed back equals the library's figures (which test_score_details.py and
test_comparison.py check against transformers), and bad option combinations are one error line.
"""

import json
import math

import pytest

import gpt2numba
from gpt2numba import GPT2
from support.checkpoints import make_checkpoint
from support.cli import assert_one_error_line, cli_env, run_cli

SAME = 1e-12   # the same computation in another process
TEXT = "Hello, world! A naïve café in Zürich served 3.14 crêpes.\nAntidisestablishmentarianism."


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("details-text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder_b(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("cli-compare-b"), n_layer=1, n_head=2,
                           n_embd=32, n_positions=64, seed=3)


def test_per_word_tsv_is_the_libraries_words(tiny_model, tiny_checkpoint, home, text_file):
    code, out, err = run_cli(["score", "-m", tiny_checkpoint, "--per-word", text_file],
                             cli_env(home))
    assert code == 0, err
    header, *rows = out.split("\n")[:-1]
    assert header == "file\tnumber\tword\tlogprob\tplain_sum\tfirst_token\tlast_token"
    words = tiny_model.score(TEXT, details=True).words()
    assert len(rows) == len(words) == len(TEXT.split())
    for k, (row, word) in enumerate(zip(rows, words), start=1):
        name, number, text, logprob, plain_sum, first, last = row.split("\t")
        assert (name, int(number), text) == (str(text_file), k, word.text)
        assert (int(first), int(last) + 1) == word.tokens
        for printed, value in ((logprob, word.logprob), (plain_sum, word.plain_sum)):
            assert (printed == "nan" and math.isnan(value)) or \
                float(printed) == pytest.approx(value, rel=SAME)
    assert "bits/byte" in err.splitlines()[0]   # the table on stderr


def test_per_token_rank_entropy_and_top_k_are_the_libraries(tiny_model, tiny_checkpoint, home,
                                                            text_file):
    code, out, err = run_cli(["score", "-m", tiny_checkpoint, "--per-token", "--top-k", 3,
                              text_file], cli_env(home))
    assert code == 0, err
    header, *rows = out.split("\n")[:-1]
    assert header.split("\t")[5:] == ["rank", "entropy", "top1", "top1_logprob", "top2",
                                      "top2_logprob", "top3", "top3_logprob"]
    details = tiny_model.score(TEXT, top_k=3).details
    assert len(rows) == len(details.ranks)
    for t, row in enumerate(rows):
        fields = row.split("\t")
        assert int(fields[5]) == details.ranks[t]
        assert float(fields[6]) == pytest.approx(details.entropies[t], rel=SAME)
        for r in range(3):
            assert fields[7 + 2 * r] == tiny_model.tokenizer.decode(
                [int(details.top_ids[t, r])]).replace("\n", "\\n")
            assert float(fields[8 + 2 * r]) == pytest.approx(details.top_logprobs[t, r], rel=SAME)


def test_json_carries_bits_per_byte_details_and_words(tiny_model, tiny_checkpoint, home,
                                                      text_file):
    code, out, err = run_cli(["score", "-m", tiny_checkpoint, "--json", "--per-token",
                              "--per-word", "--top-k", 2, text_file], cli_env(home))
    assert code == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    score = tiny_model.score(TEXT, top_k=2)
    assert record["bits_per_byte"] == pytest.approx(score.bits_per_byte, rel=SAME)
    assert record["ranks"] == score.details.ranks.tolist()
    assert record["top_ids"] == score.details.top_ids.tolist()
    assert [w["word"] for w in record["words"]] == TEXT.split()
    assert record["words"][0]["logprob"] is None     # the first word holds the unscored token
    assert record["words"][1]["logprob"] == pytest.approx(score.words()[1].logprob, rel=SAME)


def test_compare_table_and_json_are_the_libraries(tiny_model, tiny_checkpoint, folder_b, home,
                                                  text_file):
    expected = gpt2numba.compare(tiny_model, GPT2.from_pretrained(folder_b), TEXT, stride=20)
    code, out, err = run_cli(["compare", "-m", tiny_checkpoint, "-m", folder_b, "--stride", 20,
                              text_file, text_file], cli_env(home))
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["file", "tokens", "ppl_a", "ppl_b", "kl_mean", "kl_max",
                              "top1_agree", "x_ppl", "binoculars"]
    assert len(rows) == 2
    fields = rows[0].split()
    assert int(fields[1]) == expected.tokens
    assert float(fields[4]) == pytest.approx(expected.kl_mean, abs=1e-4)
    assert float(fields[8]) == pytest.approx(expected.binoculars, abs=1e-4)
    code, out, err = run_cli(["compare", "-m", tiny_checkpoint, "-m", folder_b, "--stride", 20,
                              "--json", text_file], cli_env(home))
    assert code == 0, err
    record = json.loads(out)
    for name, value in expected.as_dict().items():
        assert record[name] == pytest.approx(value, rel=SAME), name


@pytest.mark.parametrize("args, status, words", [
    (["score", "--top-k", 3, "FILE"], 2, ["--top-k", "--per-token"]),
    (["score", "--per-token", "--top-k", 21, "FILE"], 2, ["--top-k", "1<=x<=20"]),
    (["score", "--per-token", "--top-k", 0, "FILE"], 2, ["--top-k", "1<=x<=20"]),
    (["score", "--per-token", "--per-word", "FILE"], 2, ["--per-word", "--json"]),
    (["compare", "-m", "MODEL", "FILE"], 2, ["two models", "got 1"]),
    (["compare", "-m", "MODEL", "-m", "MODEL", "-m", "MODEL", "FILE"], 2, ["got 3"]),
    (["compare", "-m", "MODEL", "-m", "OTHER", "FILE"], 1, ["different vocabularies"]),
])
def test_bad_arguments_are_one_error_line(tiny_checkpoint, folder_b, home, text_file, tmp_path,
                                          args, status, words):
    other = tmp_path / "other"   # model B with two tokens of its vocab.json swapped
    other.mkdir()
    for path in folder_b.iterdir():
        (other / path.name).symlink_to(path)
    (other / "vocab.json").unlink()
    vocab = json.loads((folder_b / "vocab.json").read_text(encoding="utf-8"))
    vocab["hello"], vocab["world"] = vocab["world"], vocab["hello"]
    (other / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    names = {"FILE": text_file, "MODEL": tiny_checkpoint, "OTHER": other}
    code, out, err = run_cli([names.get(a, a) if isinstance(a, str) else a for a in args],
                             cli_env(home))
    assert_one_error_line(code, err, status, *words)
    assert out == ""
