"""Scoring text against transformers.GPT2LMHeadModel over the same windows, and the CLI.

The oracle runs each window through GPT2LMHeadModel, takes log_softmax of its logits in float64
and gathers the targets the window scores; its nll is the recipe's cross-entropy with labels
-100 on the positions a window does not score, summed. Ours must agree within 1e-4 relative,
on every token_logprob and on the nll. The checkpoints use initializer_range 0.5 (logits
spread wide, so the numbers vary) and n_positions = 32 (many windows, cheap), plus one
full-size context of 1024.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from gpt2numba import GPT2
from gpt2numba.errors import ArgumentError
from gpt2numba.score import windows
from support.checkpoints import make_checkpoint
from support.cli import (
    assert_one_error_line,
    assert_refused_in_seconds,
    cli_env,
    run_cli,
    run_with_peak,
    run_with_peak_on_yes,
)
from support.tokenizer_corpus import english_prose

N_POSITIONS = 32
RTOL = 1e-4
# The same computation in another process (the CLI): equal up to float64 rounding, not always
# to the last bit (a vectorised float64 sum may be grouped differently there).
SAME = 1e-12


def transformers_scores(model, ids, n_positions, stride):
    """(token_logprobs [N-1] float64, nll) of ids by GPT2LMHeadModel over the same windows.

    Window k takes ids[b:e] with b = k * stride and e = min(b + n_positions, N - 1); its position
    i predicts ids[b + i + 1]; it scores the targets after the last one scored before it.
    """
    n = len(ids)
    token_logprobs = np.full(n - 1, np.nan)
    nll = 0.0
    scored = 0   # targets 1..scored are done
    for begin in range(0, n - 1, stride):
        end = min(begin + n_positions, n - 1)
        with torch.no_grad():
            logits = model(torch.tensor([ids[begin:end]])).logits[0].double()  # [end-begin, vocab]
        labels = torch.tensor(ids[begin + 1:end + 1])
        labels[:scored - begin] = -100     # targets an earlier window scored
        nll += float(torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100,
                                                       reduction="sum"))
        log_probs = torch.log_softmax(logits, dim=-1)
        for t in range(scored + 1, end + 1):
            token_logprobs[t - 1] = float(log_probs[t - begin - 1, ids[t]])
        scored = end
        if end == n - 1:
            break
    assert not np.isnan(token_logprobs).any()
    return token_logprobs, nll


@pytest.fixture(scope="module")
def folder32(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("score32"), n_layer=2, n_head=2, n_embd=32,
                           n_positions=N_POSITIONS, seed=5)


@pytest.fixture(scope="module")
def ours(folder32):
    return GPT2.from_pretrained(folder32)


@pytest.fixture(scope="module")
def theirs(folder32):
    return GPT2LMHeadModel.from_pretrained(folder32, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def prose_ids(ours):
    return ours.tokenizer.encode(english_prose(20_000))


def check_against_transformers(score, theirs, ids, n_positions, stride):
    expected, expected_nll = transformers_scores(theirs, ids, n_positions, stride)
    assert score.tokens == len(ids) - 1
    assert score.token_logprobs.dtype == np.float64 and score.token_logprobs.shape == expected.shape
    np.testing.assert_allclose(score.token_logprobs, expected, rtol=RTOL, atol=0)
    assert score.nll == pytest.approx(expected_nll, rel=RTOL)
    assert score.perplexity == pytest.approx(math.exp(score.nll / score.tokens), rel=1e-12)


# -- the windows ----------------------------------------------------------------------------------

def test_windows_worked_by_hand():
    # 10 tokens, context 4: targets 1..9.
    assert list(windows(10, 4, 4)) == [(0, 4, 0), (4, 8, 0), (8, 9, 0)]   # disjoint inputs
    assert list(windows(10, 4, 2)) == [(0, 4, 0), (2, 6, 2), (4, 8, 2), (6, 9, 2)]
    assert list(windows(10, 4, 1)) == [(0, 4, 0), (1, 5, 3), (2, 6, 3), (3, 7, 3), (4, 8, 3),
                                       (5, 9, 3)]
    assert list(windows(5, 4, 2)) == [(0, 4, 0)]     # n_positions + 1 tokens: one forward
    assert list(windows(2, 4, 3)) == [(0, 1, 0)]


@pytest.mark.parametrize("n_positions", [1, 2, 5, 32])
def test_every_target_is_scored_exactly_once_in_order(n_positions):
    for n_tokens in range(2, 4 * n_positions + 9):
        for stride in range(1, n_positions + 1):
            targets = []
            for k, (begin, end, first) in enumerate(windows(n_tokens, n_positions, stride)):
                assert begin == k * stride and 0 <= first < end - begin <= n_positions
                targets += range(begin + first + 1, end + 1)
            assert targets == list(range(1, n_tokens)) and end == n_tokens - 1


# -- against transformers -------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [1, 7, N_POSITIONS // 2, N_POSITIONS])
@pytest.mark.parametrize("n_tokens", [20, N_POSITIONS, 3 * N_POSITIONS + 7])
def test_matches_transformers(ours, theirs, prose_ids, n_tokens, stride):
    ids = prose_ids[:n_tokens]
    check_against_transformers(ours.score_ids(ids, stride=stride), theirs, ids, N_POSITIONS, stride)


def test_the_numbers_vary(ours, prose_ids):
    """A checkpoint whose log-probabilities were all alike would make parity prove little."""
    logprobs = ours.score_ids(prose_ids[:200]).token_logprobs
    assert np.std(logprobs) > 1 and len(np.unique(np.round(logprobs, 3))) > 150


def test_text_within_one_window_is_the_recipes_mean_loss(ours, theirs, prose_ids):
    ids = prose_ids[:N_POSITIONS]
    with torch.no_grad():
        loss = float(theirs(torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    assert ours.score_ids(ids).nll == pytest.approx(loss * (len(ids) - 1), rel=RTOL)


def test_default_stride_is_half_the_context(ours, prose_ids):
    ids = prose_ids[:3 * N_POSITIONS + 7]
    default = ours.score_ids(ids)
    np.testing.assert_array_equal(default.token_logprobs,
                                  ours.score_ids(ids, stride=N_POSITIONS // 2).token_logprobs)
    assert not np.array_equal(default.token_logprobs, ours.score_ids(ids, stride=7).token_logprobs)


def test_full_size_context_of_1024(tmp_path):
    folder = make_checkpoint(tmp_path, n_layer=2, n_head=2, n_embd=32, n_positions=1024, seed=6)
    model, reference = GPT2.from_pretrained(folder), GPT2LMHeadModel.from_pretrained(folder).eval()
    ids = model.tokenizer.encode(english_prose(20_000))[:2 * 1024 + 300]
    check_against_transformers(model.score_ids(ids), reference, ids, 1024, 512)


# -- the library's surface ------------------------------------------------------------------------

def test_score_of_text_is_score_of_its_ids(ours):
    text = english_prose(3_000)
    a, b = ours.score(text, stride=8), ours.score_ids(ours.tokenizer.encode(text), stride=8)
    assert (a.tokens, a.nll, a.perplexity) == (b.tokens, b.nll, b.perplexity)
    np.testing.assert_array_equal(a.token_logprobs, b.token_logprobs)


def test_score_many_equals_one_by_one(ours, theirs):
    """Short texts are packed into shared forwards, long ones scored in windows; each text's
    numbers are those of transformers on that text alone, and within float32 rounding of
    scoring it alone (the projections' register tiles group a packed text's rows differently,
    so the sums are not always bit for bit the same)."""
    prose = english_prose(8_000)
    one_window = ours.tokenizer.decode(ours.tokenizer.encode(prose)[:N_POSITIONS + 1])
    texts = [prose[:100], prose[:2_000], "Hello, world.", prose[3_000:8_000], "Hi there",
             one_window, prose[5_000:5_200]]
    many = ours.score_many((text for text in texts), stride=8)   # any iterable
    assert len(many) == len(texts)
    lengths = [len(ours.tokenizer.encode(text)) for text in texts]
    assert min(lengths) == 2 and N_POSITIONS + 1 in lengths and max(lengths) > N_POSITIONS + 1
    for text, got in zip(texts, many):
        ids = ours.tokenizer.encode(text)
        check_against_transformers(got, theirs, ids, N_POSITIONS, stride=8)
        one = ours.score(text, stride=8)
        assert got.tokens == one.tokens
        np.testing.assert_allclose(got.token_logprobs, one.token_logprobs, rtol=1e-5, atol=1e-6)


def test_score_many_packs_short_texts_into_few_forwards(ours, theirs):
    texts = [f"Text number {k % 10} is short." for k in range(40)]     # 6 tokens: 5 rows each
    forwards = []
    packed_logprobs = ours._packed_logprobs

    def counted(inputs, targets):
        forwards.append(sum(ids.size for ids in inputs))
        return packed_logprobs(inputs, targets)

    ours._packed_logprobs = counted
    try:
        many = ours.score_many(texts)
    finally:
        del ours._packed_logprobs
    assert forwards == [30] * 6 + [20]           # 6 texts of 5 rows in a forward of <= 32
    for text, got in zip(texts, many):
        check_against_transformers(got, theirs, ours.tokenizer.encode(text), N_POSITIONS,
                                   N_POSITIONS // 2)


def test_score_many_ids_equals_score_many(ours):
    texts = ["Hello, world.", english_prose(3_000), "Hi there"]
    by_text = ours.score_many(texts, stride=8)
    by_ids = ours.score_many_ids([ours.tokenizer.encode(text) for text in texts], stride=8)
    for a, b in zip(by_text, by_ids):
        np.testing.assert_array_equal(a.token_logprobs, b.token_logprobs)
    with pytest.raises(ArgumentError, match="nothing to score") as error:
        ours.score_many_ids([[1, 2, 3], [7]])
    assert error.value.argument == "ids"
    with pytest.raises(ArgumentError, match="50257") as error:
        ours.score_many_ids([[1, 2, 3], [7, 50257]])
    assert error.value.argument == "ids"


def test_packed_scores_match_ctranslate2(ours, folder32, tmp_path):
    """A second engine's numbers for many short texts: CTranslate2's score_batch (float32, the
    checkpoint converted by its own converter) scores each text's tokens after the first."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(folder32)).convert(str(tmp_path / "ct2"), quantization="float32")
    generator = ctranslate2.Generator(str(tmp_path / "ct2"), device="cpu",
                                      compute_type="float32")
    vocab = json.loads((folder32 / "vocab.json").read_text(encoding="utf-8"))
    strings = {index: string for string, index in vocab.items()}
    texts = [english_prose(600)[k * 40:k * 40 + 60] for k in range(12)]
    ids = [ours.tokenizer.encode(text) for text in texts]
    theirs = generator.score_batch([[strings[i] for i in one] for one in ids])
    for got, expected in zip(ours.score_many(texts), theirs):
        np.testing.assert_allclose(got.token_logprobs, expected.log_probs, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize("texts", ["Hello, world. How are you?", b"Hello, world.",
                                   bytearray(b"Hello, world.")])
def test_score_many_refuses_a_single_text(ours, texts):
    """A str is an iterable of characters: scored one by one, each would be "a single token"."""
    with pytest.raises(ArgumentError, match="pass a list of texts") as error:
        ours.score_many(texts)
    assert error.value.argument == "texts"


def test_progress_is_reported_after_each_window(ours, prose_ids):
    ids = prose_ids[:3 * N_POSITIONS + 7]   # targets 1..102; windows end at 32, 48, ..., 102
    calls = []
    ours.score_ids(ids, stride=16, progress=lambda scored, total: calls.append((scored, total)))
    assert calls == [(end, 102) for end in (32, 48, 64, 80, 96, 102)]


@pytest.mark.parametrize("stride", [0, -1, N_POSITIONS + 1, 1.5, "8", True])
def test_stride_outside_the_context_is_refused(ours, stride):
    """An ArgumentError naming "stride", as generation's arguments are named."""
    for call in (lambda: ours.score("Some text to score here", stride=stride),
                 lambda: ours.score_ids([1, 2, 3], stride=stride),
                 lambda: ours.score_many(["Some text"], stride=stride)):
        with pytest.raises(ArgumentError,
                           match=rf"stride must be an integer in 1\.\.{N_POSITIONS}") as error:
            call()
        assert error.value.argument == "stride"


@pytest.mark.parametrize("text", ["", "Hello"])
def test_nothing_to_score(ours, text):
    assert len(ours.tokenizer.encode(text)) < 2
    with pytest.raises(ArgumentError, match="nothing to score") as error:
        ours.score(text)
    assert error.value.argument == "text"
    with pytest.raises(ArgumentError, match="nothing to score") as error:
        ours.score_ids(ours.tokenizer.encode(text))
    assert error.value.argument == "ids"
    with pytest.raises(ArgumentError, match="nothing to score") as error:
        ours.score_many(["Some text to score", text])
    assert error.value.argument == "text"


@pytest.mark.parametrize("ids,words", [([1, 50257], "out of range"), ([-1, 3], "out of range"),
                                       ([[1, 2], [3, 4]], "1-D"), ([1.0, 2.0], "integer")])
def test_bad_ids_are_refused(ours, ids, words):
    with pytest.raises(ArgumentError, match=words) as error:
        ours.score_ids(ids)
    assert error.value.argument == "ids"


# -- memory ---------------------------------------------------------------------------------------

# A fresh process scores a text and prints its peak resident set (VmHWM, KiB) and token count.
SCORE_AND_REPORT_PEAK = textwrap.dedent("""
    import sys
    from gpt2numba import GPT2
    from gpt2numba.bench import peak_rss_bytes

    model = GPT2.from_pretrained(sys.argv[1])
    text = open(sys.argv[2], encoding="utf-8").read()
    score = model.score(text, stride=model.config.n_positions)
    print(peak_rss_bytes() // 1024, score.tokens)
""")


def peak_of_scoring(folder, text_file):
    run = subprocess.run([sys.executable, "-c", SCORE_AND_REPORT_PEAK, str(folder), str(text_file)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    peak, tokens = map(int, run.stdout.split())
    return peak, tokens


def test_memory_of_a_long_text_is_within_50_mb_of_one_window(tmp_path):
    """100 KB of text (about 28,000 tokens, 220 windows): if each window left anything the size
    of its logits behind (25 MB here), the peak would grow by gigabytes. (1 MB takes minutes on
    2 cores: a window of 128 costs a head of 128 x 50257.)"""
    folder = make_checkpoint(tmp_path / "model", n_layer=1, n_head=2, n_embd=16, n_positions=128)
    long_text = english_prose(100_000)
    model = GPT2.from_pretrained(folder)
    one_window = model.tokenizer.decode(model.tokenizer.encode(long_text)[:129])
    (tmp_path / "one.txt").write_text(one_window, encoding="utf-8")
    (tmp_path / "long.txt").write_text(long_text, encoding="utf-8")
    peak_of_scoring(folder, tmp_path / "one.txt")   # compiles into the cache: no compiler in peaks
    one_peak, one_tokens = peak_of_scoring(folder, tmp_path / "one.txt")
    long_peak, long_tokens = peak_of_scoring(folder, tmp_path / "long.txt")
    print(f"\n[memory] one window ({one_tokens} tokens scored): peak {one_peak / 1024:.0f} MiB; "
          f"100 KB text ({long_tokens} tokens): peak {long_peak / 1024:.0f} MiB")
    assert 64 < one_tokens <= 128 and long_tokens > 20_000   # one window; very many
    assert long_peak - one_peak <= 50 * 1024


# -- the command line -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score-texts")
    prose = english_prose(20_000)
    files = {"short.txt": prose[:120], "long.txt": prose[1_000:3_000],
             "odd.txt": "tab\there\r\nback\\slash ☃ 漢字 \n"}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return folder


def score_cli(folder32, home, *args, stdin=b""):
    return run_cli(["score", "--model", folder32, *args], cli_env(home), stdin=stdin)


def test_cli_table_per_file_and_corpus_total(ours, folder32, home, text_files):
    paths = [text_files / "short.txt", text_files / "long.txt"]
    code, out, err = score_cli(folder32, home, *paths, "--stride", 16)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["file", "tokens", "nll", "perplexity", "bits/byte"]
    scores = [ours.score(p.read_text(encoding="utf-8"), stride=16) for p in paths]
    for row, path, score in zip(rows, paths, scores):
        name, tokens, nll, perplexity, bits_per_byte = row.split()
        assert (name, int(tokens)) == (str(path), score.tokens)
        assert float(nll) == pytest.approx(score.nll, abs=1e-4)
        assert float(perplexity) == pytest.approx(score.perplexity, rel=1e-5)
        assert float(bits_per_byte) == pytest.approx(score.bits_per_byte, abs=1e-4)
    name, tokens, nll, perplexity, bits_per_byte = rows[2].split()
    total_nll, total_tokens = sum(s.nll for s in scores), sum(s.tokens for s in scores)
    assert (name, int(tokens)) == ("total", total_tokens) and len(rows) == 3
    assert float(perplexity) == pytest.approx(math.exp(total_nll / total_tokens), rel=1e-5)
    total_bytes = sum(s.scored_bytes for s in scores)
    assert float(bits_per_byte) == pytest.approx(total_nll / math.log(2) / total_bytes, abs=1e-4)
    # the long text takes several windows: progress on stderr ends with tokens/s
    assert f"gpt2numba: {paths[1]}: scored {scores[1].tokens} tokens in " in err
    assert "tokens/s)" in err and str(paths[0]) not in err


def test_cli_json_per_file_from_files_and_stdin(ours, folder32, home, text_files):
    long_text = (text_files / "long.txt").read_bytes()
    code, out, err = score_cli(folder32, home, text_files / "short.txt", "-", "--json",
                               "--per-token", stdin=long_text)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in records] == [str(text_files / "short.txt"), "stdin"]
    for record, text in zip(records, [(text_files / "short.txt").read_text(encoding="utf-8"),
                                      long_text.decode("utf-8")]):
        score = ours.score(text, details=True)   # what --per-token asks for: ranks, entropies
        assert record["tokens"] == score.tokens and record["ids"] == ours.tokenizer.encode(text)[1:]
        assert record["nll"] == pytest.approx(score.nll, rel=SAME)
        assert record["perplexity"] == pytest.approx(score.perplexity, rel=SAME)
        np.testing.assert_allclose(record["token_logprobs"], score.token_logprobs, rtol=SAME)
    assert err.splitlines()[0].split()[:4] == ["file", "tokens", "nll", "perplexity"]  # stderr


def test_cli_per_token_tsv_parsed_back(ours, folder32, home, text_files):
    path = text_files / "odd.txt"
    code, out, err = score_cli(folder32, home, path, "--per-token")
    assert code == 0, err
    header, *rows = out.split("\n")[:-1]
    assert header == "file\tposition\tid\ttoken\tlogprob\trank\tentropy"
    text = path.read_bytes().decode("utf-8")
    ids, score = ours.tokenizer.encode(text), ours.score(text, details=True)
    assert len(rows) == score.tokens
    tokens = b""
    for t, row in enumerate(rows, start=1):
        name, position, token_id, token, logprob, _, _ = row.split("\t")
        assert (name, int(position), int(token_id)) == (str(path), t, ids[t])
        assert float(logprob) == pytest.approx(score.token_logprobs[t - 1], rel=SAME)
        tokens += _unescape(token)
    assert tokens == path.read_bytes()[len(ours.tokenizer.decode_bytes(ids[:1])):]


def test_cli_per_token_escapes_file_names_as_tokens(ours, folder32, home, tmp_path):
    """A file name with a tab, a newline, a backslash or a byte that is not UTF-8 stays one
    TSV field, escaped as the tokens are."""
    name = b"tab\there\nnew\\line \xff.txt"
    path = tmp_path / os.fsdecode(name)
    path.write_text("Some words to score in a file.", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gpt2numba", "score", "--model", str(folder32),
                           "--per-token", os.fsencode(path)], env=cli_env(home),
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.decode("utf-8").split("\n")[:-1]  # UTF-8 whatever the name
    assert len(rows) == ours.score(path.read_text(encoding="utf-8")).tokens
    for row in rows:
        fields = row.split("\t")
        assert len(fields) == 7 and _unescape(fields[0]) == os.fsencode(path), row


def _unescape(field) -> bytes:
    """Undo the TSV escapes: \\\\, \\t, \\n, \\r and \\xHH (a byte), the rest UTF-8."""
    out, i = b"", 0
    while i < len(field):
        if field[i] != "\\":
            out += field[i].encode("utf-8")
            i += 1
        elif field[i + 1] == "x":
            out += bytes([int(field[i + 2:i + 4], 16)])
            i += 4
        else:
            out += {"\\": b"\\", "t": b"\t", "n": b"\n", "r": b"\r"}[field[i + 1]]
            i += 2
    return out


@pytest.mark.parametrize("args,stdin,status,words", [
    (["--stride", 33], b"Some words to score", 2, ["--stride", "1..32"]),
    (["--stride", 0], b"Some words to score", 2, ["--stride"]),
    (["-"], b"", 1, ["stdin", "nothing to score"]),
    (["-"], b"Hello", 1, ["stdin", "nothing to score"]),
    (["-"], b"caf\xe9", 2, ["stdin", "not UTF-8"]),
    (["-", "-"], b"Some words", 2, ["stdin", "only once"]),
    (["no-such-file.txt"], b"", 2, ["no-such-file.txt", "No such file"]),
])
def test_cli_bad_input_is_one_error_line(folder32, home, args, stdin, status, words):
    code, out, err = score_cli(folder32, home, *args, stdin=stdin)
    assert_one_error_line(code, err, status, *words)
    assert out == ""


def test_cli_endless_input_is_refused_in_seconds_within_bounded_memory(folder32, home, tmp_path):
    """A file or stdin is read up to 16 MiB (as `run` reads a prompt), then refused: /dev/zero
    and a pipe that never ends take seconds, not gigabytes."""
    env = cli_env(home)
    assert_refused_in_seconds(run_with_peak(["score", "--model", folder32, "/dev/zero"], env,
                                            subprocess.DEVNULL, tmp_path), "/dev/zero", "16 MiB")
    assert_refused_in_seconds(run_with_peak_on_yes(["score", "--model", folder32], env, tmp_path),
                              "stdin", "16 MiB")
    code, out, err = run_cli(["score", "--help"], cli_env(home, COLUMNS=100))
    assert code == 0 and "16 MiB" in out, err


@pytest.fixture
def bad_files(tmp_path):
    """Files that cannot be scored, each with the words that say why."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "one-token.txt").write_bytes(b"Hello")
    (folder / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    (tmp_path / "a-folder").mkdir()
    return {folder / "empty.txt": "nothing to score", folder / "latin1.txt": "not UTF-8",
            folder / "missing.txt": "No such file", folder / "one-token.txt": "nothing to score",
            tmp_path / "a-folder": "directory"}


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("gpt2numba: error: ")]


def table_rows(text):
    """The rows of the table in `text` (stdout, or stderr with --json or --per-token), header
    left out: (file, tokens)."""
    rows = [line.split() for line in text.splitlines() if not line.startswith("gpt2numba:")]
    assert rows[0] == ["file", "tokens", "nll", "perplexity", "bits/byte"], text
    return [(name, int(tokens)) for name, tokens, *_ in rows[1:]]


@pytest.mark.parametrize("mode", [[], ["--json"], ["--per-token"]])
def test_cli_scores_every_file_it_can_and_names_each_one_it_cannot(ours, folder32, home,
                                                                   text_files, bad_files, mode):
    """As `wc` does: a row for each file that can be scored, one error line for each that
    cannot, and a failing status at the end."""
    short, long = text_files / "short.txt", text_files / "long.txt"
    bad = list(bad_files)
    code, out, err = score_cli(folder32, home, bad[0], short, *bad[1:3], long, *bad[3:],
                               "--stride", 16, *mode)
    assert code == 2 and "Traceback" not in err, err   # 2: some files cannot be read at all
    errors = error_lines(err)
    assert len(errors) == len(bad_files), err
    for path, why in bad_files.items():
        assert sum(str(path) in line and why in line for line in errors) == 1, (path, err)
    tokens = {str(path): ours.score(path.read_text(encoding="utf-8"), stride=16).tokens
              for path in (short, long)}
    assert table_rows(out if not mode else err) == [*tokens.items(),
                                                    ("total", sum(tokens.values()))]
    if mode == ["--json"]:
        records = [json.loads(line) for line in out.splitlines()]
        assert {record["file"]: record["tokens"] for record in records} == tokens
    elif mode == ["--per-token"]:
        files = [row.split("\t")[0] for row in out.splitlines()[1:]]
        assert {name: files.count(name) for name in files} == tokens


def test_cli_a_text_too_short_to_score_leaves_the_others_their_rows(ours, folder32, home,
                                                                    text_files, bad_files):
    short, empty = text_files / "short.txt", next(iter(bad_files))
    code, out, err = score_cli(folder32, home, short, empty)
    assert_one_error_line(code, err, 1, str(empty), "nothing to score")
    assert table_rows(out) == [(str(short), ours.score(short.read_text(encoding="utf-8")).tokens)]


def test_cli_files_are_checked_before_the_model_loads(home, text_files, bad_files):
    latin1, missing = list(bad_files)[1:3]
    code, out, err = run_cli(["score", "--model", "/no/such/model", latin1, missing],
                             cli_env(home))
    errors = error_lines(err)
    assert code == 2 and len(errors) == 2 and err.splitlines() == errors, err
    assert str(latin1) in errors[0] and str(missing) in errors[1] and out == ""
    code, out, err = run_cli(["score", "--model", "/no/such/model", text_files / "short.txt",
                              latin1], cli_env(home))
    errors = error_lines(err)
    assert len(errors) == 2 and str(latin1) in errors[0] and "/no/such/model" in errors[1], err
    assert code != 0 and out == ""


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_cli_a_file_name_that_is_not_utf8_is_printed_escaped(folder32, home, tmp_path, mode):
    """On a UTF-8 stdout, the table and the JSON show a name's bytes that are not UTF-8 as
    \\xHH (a traceback before: Python keeps such bytes as surrogates, which UTF-8 refuses)."""
    path = tmp_path / os.fsdecode(b"caf\xe9.txt")   # Latin-1, as an old archive names it
    path.write_text("Some words to score in a file.", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gpt2numba", "score", "--model", str(folder32),
                           *mode, os.fsencode(path)], capture_output=True, timeout=300,
                          env=cli_env(home, PYTHONIOENCODING="utf-8"))
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")
    shown = str(tmp_path / "caf\\xe9.txt")
    assert (json.loads(out)["file"] == shown) if mode else (shown in out.splitlines()[1])
