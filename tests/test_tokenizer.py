"""gpt2numba.tokenizer: the API, decoding and streaming, loading and its errors, merge rules."""

import json
import random
import shutil
import threading
import time

import numpy as np
import pytest

from gpt2numba import tokenizer as tokmod
from gpt2numba import tokenizer_bpe
from gpt2numba.tokenizer import Tokenizer, bytes_to_unicode
from tests.tokenizer_corpus import CJK, EMOJI, EOT, corpus, gpt2_tokenizer, oracle

B2U = bytes_to_unicode()


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


# ------------------------------------------------------------------------------------ API

def test_gpt2_constants(tok):
    assert tok.vocab_size == 50257
    assert tok.eos_id == 50256
    assert tok.eos_token == "<|endoftext|>" == EOT
    assert "50257" in repr(tok)


def test_known_ids(tok):
    """Ids from OpenAI's GPT-2 encoder."""
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode(" the") == [262]
    assert tok.encode("\n\n") == [628]
    assert tok.encode("") == []
    assert tok.decode([]) == "" and tok.decode_bytes([]) == b""


def test_from_files_takes_str_and_path(vocab_dir):
    a = Tokenizer.from_files(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"))
    b = Tokenizer.from_files(vocab_dir / "vocab.json", vocab_dir / "merges.txt")
    assert a.encode("same text") == b.encode("same text") == [31642, 2420]


def test_loading_takes_well_under_a_second(vocab_dir):
    """The budget is 0.2 s on a quiet machine; this only catches gross regressions."""
    best = min(timed(lambda: Tokenizer.from_files(vocab_dir / "vocab.json",
                                                  vocab_dir / "merges.txt")) for _ in range(3))
    assert best < 1.0


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_encode_takes_only_str(tok):
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")


def test_endoftext_is_ordinary_text_unless_allowed(tok):
    ordinary = tok.encode(f"a{EOT}b")
    assert 50256 not in ordinary
    assert tok.decode(ordinary) == f"a{EOT}b"
    assert tok.encode(f"a{EOT}b", allow_special=True) == [64, 50256, 65]
    assert tok.encode(EOT, allow_special=True) == [50256]
    assert tok.encode(EOT + EOT, allow_special=True) == [50256, 50256]
    assert tok.decode([50256]) == EOT
    assert tok.decode_bytes([50256]) == EOT.encode()


def test_lone_surrogates_are_replaced_like_tiktoken(tok):
    """A str with lone surrogates cannot be UTF-8: tiktoken encodes U+FFFD for each."""
    enc = oracle()
    for text in ["a\ud800b", "\udfff", "x \ud83d\ude00 y"]:
        assert tok.encode(text) == enc.encode_ordinary(text)


# ------------------------------------------------------------------------------ decoding

def test_decode_of_ids_that_split_a_character(tok):
    ids = tok.encode("🎉")
    assert len(ids) > 1  # the emoji's 4 bytes are several tokens
    raw = "🎉".encode()
    first = tok.decode_bytes(ids[:1])
    assert raw.startswith(first) and first != raw
    assert tok.decode(ids[:1]) == first.decode("utf-8", errors="replace")
    assert "\ufffd" in tok.decode(ids[:1])
    assert tok.decode_bytes(ids) == raw and tok.decode(ids) == "🎉"
    # cut in the middle of a text: the text before is intact, the cut character is U+FFFD
    text_ids = tok.encode("ok 日本")
    for k in range(len(text_ids) + 1):
        raw = tok.decode_bytes(text_ids[:k])
        assert "ok 日本".encode().startswith(raw)
        assert tok.decode(text_ids[:k]) == raw.decode("utf-8", errors="replace")


def test_decode_accepts_lists_tuples_generators_and_numpy(tok):
    ids = tok.encode("Hello there")
    assert tok.decode(tuple(ids)) == "Hello there"
    assert tok.decode(iter(ids)) == "Hello there"
    assert tok.decode(i for i in ids) == "Hello there"
    assert tok.decode(np.array(ids, dtype=np.int64)) == "Hello there"
    assert tok.decode(np.array(ids, dtype=np.int32)) == "Hello there"
    assert tok.decode([np.int64(i) for i in ids]) == "Hello there"


@pytest.mark.parametrize("bad", [-1, 50257, 10**20, -(10**20), 1.0, "5", None, True, 2.5,
                                 np.float32(3), [1]])
def test_decode_rejects_bad_ids_with_the_id_and_the_range(tok, bad):
    for fn in (tok.decode, tok.decode_bytes):
        with pytest.raises(ValueError) as info:
            fn([15496, bad, 995])
        message = str(info.value)
        assert repr(bad) in message or str(bad) in message
        assert "0..50256" in message
    with pytest.raises(ValueError, match="0..50256"):
        tok.stream_decoder().push(bad)


# ------------------------------------------------------------------------------ streaming

def stream(tok, ids):
    decoder = tok.stream_decoder()
    pieces = [decoder.push(i) for i in ids]
    return pieces, decoder.flush()


@pytest.mark.parametrize("text", EMOJI + CJK + ["naïve café", "a🎉b", "日本", "\u0915\u094d\u0937",
                                                "𝐁𝐨𝐥𝐝 𝕏", "mixed 🎉 text\n日本語 ok"])
def test_stream_decoder_gives_exactly_the_text_and_never_fffd(tok, text):
    pieces, tail = stream(tok, tok.encode(text))
    assert "".join(pieces) + tail == text
    assert not any("\ufffd" in p for p in pieces) and tail == ""


def test_stream_decoder_on_the_whole_corpus(tok):
    for name, text in corpus().items():
        if "\ufffd" in text:
            continue
        pieces, tail = stream(tok, tok.encode(text))
        assert "".join(pieces) + tail == text, name
        assert not any("\ufffd" in p for p in pieces), name


def test_stream_decoder_emits_a_character_as_soon_as_it_is_complete(tok):
    ids = tok.encode("🎉")
    decoder = tok.stream_decoder()
    outs = [decoder.push(i) for i in ids]
    assert outs[:-1] == [""] * (len(ids) - 1) and outs[-1] == "🎉"
    assert decoder.push(tok.encode("!")[0]) == "!"
    assert decoder.flush() == ""


def test_stream_decoder_replaces_invalid_and_unfinished_bytes(tok):
    single = {tok.decode_bytes([i])[0]: i for i in range(256)}  # byte value -> its id
    decoder = tok.stream_decoder()
    assert decoder.push(single[0x80]) == "\ufffd"  # a stray continuation byte: invalid at once
    assert decoder.push(single[0xF0]) == ""  # the start of a 4-byte character: held back
    assert decoder.push(single[0x9F]) == ""
    assert decoder.flush() == "\ufffd"  # never finished
    # after flush the decoder starts afresh
    assert decoder.push(tok.encode("a")[0]) == "a"


# ------------------------------------------------------------------------- from_pretrained

def test_from_pretrained_local_folder(tmp_path, vocab_dir, tok):
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(vocab_dir / name, tmp_path / name)
    loaded = Tokenizer.from_pretrained(tmp_path)
    text = "From a local folder: naïve 🎉 <|endoftext|>"
    assert loaded.encode(text) == tok.encode(text)
    assert Tokenizer.from_pretrained(str(tmp_path)).vocab_size == 50257


def test_from_pretrained_errors_come_from_weights(tmp_path, vocab_dir):
    from gpt2numba.weights import WeightsError

    shutil.copy(vocab_dir / "vocab.json", tmp_path / "vocab.json")
    with pytest.raises(WeightsError, match="merges.txt"):
        Tokenizer.from_pretrained(tmp_path)  # a folder without merges.txt
    with pytest.raises(WeightsError, match="does not exist"):
        Tokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(WeightsError, match="revision"):
        Tokenizer.from_pretrained(tmp_path, revision="v1")


def test_from_pretrained_from_the_hub_fetches_only_the_tokenizer_files(tmp_path, vocab_dir, hub):
    """Through weights.resolve and a local fake of the Hub (real HTTP), in a fresh process."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(vocab_dir / name, repo / name)
    (repo / "config.json").write_text("{}")
    hub.add_repo("openai-community/gpt2", repo)
    code = ("from gpt2numba.tokenizer import Tokenizer\n"
            "print(Tokenizer.from_pretrained('gpt2').encode('Hello world'))")
    run = hub.run(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[15496, 995]"
    fetched = {path.rsplit("/", 1)[1] for method, path in hub.requests
               if method == "GET" and "/resolve/" in path}
    assert fetched == {"vocab.json", "merges.txt"}
    hub.clear()
    offline = hub.run(code, offline=True)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip().splitlines()[-1] == "[15496, 995]"
    assert hub.requests == []


# -------------------------------------------------------------------- a small vocabulary

BYTE_TOKENS = sorted(B2U.values())  # GPT-2 order: id 0 is "!", ids 188.. the unprintable bytes


def write_files(folder, merges, *, vocab=None, vocab_text=None, merges_text=None):
    """vocab.json (one token per line: line k+2 holds id k) and merges.txt in `folder`."""
    if vocab is None:
        vocab = {t: i for i, t in enumerate(BYTE_TOKENS)}
        for a, b in merges:
            vocab.setdefault(a + b, len(vocab))
        vocab[EOT] = len(vocab)
    if vocab_text is None:
        vocab_text = json.dumps(vocab, indent=0, ensure_ascii=False)
    if merges_text is None:
        merges_text = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    (folder / "vocab.json").write_text(vocab_text, encoding="utf-8")
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"


TOY_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("a", "a")]


def test_toy_vocabulary(tmp_path):
    t = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES))
    ids = t.encode(" the")
    assert len(ids) == 1 and t.decode(ids) == " the"
    assert t.vocab_size == 256 + 4 + 1 and t.eos_id == 260
    assert t.encode("aaaaa") == [259, 259, t.encode("a")[0]]  # left to right, no overlap


def test_merges_follow_the_original_rule_all_occurrences_of_the_best_pair(tmp_path):
    """OpenAI's encoder merges *every* occurrence of the best pair before looking again.

    Here merge 0 ("ab", "a") only becomes possible after merge 1 ("a", "b"): in "abab" the
    original gives [ab, ab]; merging one pair at a time would give [aba, b]. Both the short
    and the long (heap) merge loops follow the original.
    """
    vocab_path, merges_path = write_files(tmp_path, [("ab", "a"), ("a", "b")], vocab={
        **{t: i for i, t in enumerate(BYTE_TOKENS)}, "aba": 256, "ab": 257, EOT: 258})
    t = Tokenizer.from_files(vocab_path, merges_path)
    assert t.encode("abab") == [257, 257]
    assert t.encode("ab" * 100) == [257] * 100  # long piece: the heap loop
    assert t.encode("aba") == [256]


def test_long_piece_merge_loop_equals_the_short_one(tok, monkeypatch):
    """Pieces longer than _LONG_PIECE bytes use a heap; it must give the same merges."""
    rng = random.Random(5)
    alphabets = ["ab", "abc ", "aeiou", "0123456789", "日本語", "🎉a", "xyzxyz", " ", "\n "]
    words = []
    for _ in range(300):
        alphabet = rng.choice(alphabets)
        words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))))
    words += ["a" * n for n in range(1, 150)] + [" " * n for n in range(1, 150)]
    bpe = tok._bpe
    long_ = [bpe.merge_long(list(w.encode().translate(bpe.byte_table))) for w in words]
    monkeypatch.setattr(tokenizer_bpe, "_LONG_PIECE", 10**9)
    short = [tok._bpe(w.encode()) for w in words]
    assert long_ == short


def test_word_cache_is_bounded_and_stays_correct(vocab_dir, monkeypatch):
    monkeypatch.setattr(tokmod, "_CACHE_MAX", 50)
    t = Tokenizer.from_files(vocab_dir / "vocab.json", vocab_dir / "merges.txt")
    text = " ".join(f"w{i}x" for i in range(500))
    assert t.encode(text) == oracle().encode_ordinary(text)
    assert len(t._cache) <= 50


def test_encode_is_thread_safe(vocab_dir, monkeypatch):
    monkeypatch.setattr(tokmod, "_CACHE_MAX", 64)  # make the cache clear often, mid-encode
    t = Tokenizer.from_files(vocab_dir / "vocab.json", vocab_dir / "merges.txt")
    texts = list(corpus().values())[:300]
    expected = [oracle().encode_ordinary(s) for s in texts]
    failures = []

    def work():
        for s, e in zip(texts, expected):
            if t.encode(s) != e:
                failures.append(s)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures


# ---------------------------------------------------------------------- malformed files

def expect_error(vocab_merges, *fragments):
    with pytest.raises(ValueError) as info:
        Tokenizer.from_files(*vocab_merges)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def good_vocab():
    vocab = {t: i for i, t in enumerate(BYTE_TOKENS)}
    for a, b in TOY_MERGES:
        vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    return vocab


def test_a_good_toy_pair_loads(tmp_path):
    Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES))


def test_vocab_not_json(tmp_path):
    text = json.dumps(good_vocab(), indent=0, ensure_ascii=False)
    text = text.replace('"#": 2,', '"#": 2,,')
    msg = expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json",
                       "line 4", "not valid JSON")
    assert str(tmp_path) in msg


def test_vocab_empty_file(tmp_path):
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=""), "vocab.json", "line 1",
                 "not valid JSON")


def test_vocab_not_utf8(tmp_path):
    paths = write_files(tmp_path, TOY_MERGES)
    paths[0].write_bytes(b'{"!": 0,\n"\xff": 1}')
    expect_error(paths, "vocab.json", "line 2", "UTF-8")


def test_vocab_not_an_object(tmp_path):
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text="[1, 2]"), "vocab.json",
                 "JSON object")


def test_vocab_empty_object(tmp_path):
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text="{}"), "vocab.json", "empty")


@pytest.mark.parametrize("value", ['"3"', "3.0", "true", "null", "[3]"])
def test_vocab_non_integer_id(tmp_path, value):
    text = json.dumps(good_vocab(), indent=0, ensure_ascii=False)
    text = text.replace('"$": 3,', f'"$": {value},')
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json", "line 5",
                 "'$'", "not an integer")


def test_vocab_negative_id(tmp_path):
    vocab = good_vocab()
    vocab["$"] = -3
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json", "line 5",
                 "negative")


def test_vocab_duplicate_id(tmp_path):
    vocab = good_vocab()
    vocab["$"] = 2
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json", "line 5",
                 "id 2", "'#'", "'$'")


def test_vocab_duplicate_token(tmp_path):
    text = json.dumps(good_vocab(), indent=0, ensure_ascii=False)
    text = text.replace('"$": 3,', '"$": 3,\n"#": 7,')
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json",
                 "line 6", "'#'", "appears twice")


def test_vocab_without_endoftext(tmp_path):
    vocab = good_vocab()
    del vocab[EOT]
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json",
                 "<|endoftext|>")


@pytest.mark.parametrize("token", ["a b", "tab\t", "new\nline", "Ā\u0300", "\u3000", ""])
def test_vocab_token_outside_the_byte_alphabet(tmp_path, token):
    vocab = good_vocab()
    vocab[token] = len(vocab)
    msg = expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json",
                       f"line {len(vocab) + 1}")
    assert "byte alphabet" in msg or "empty token" in msg


def test_vocab_with_a_gap_in_ids(tmp_path):
    vocab = good_vocab()
    vocab[EOT] += 5
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json", "gaps",
                 f"id {vocab[EOT] - 5}")


def test_vocab_missing_a_byte(tmp_path):
    vocab = {t: i for i, t in enumerate(BYTE_TOKENS) if t != "Ġ"}
    vocab = {t: i for i, t in enumerate(vocab)}
    vocab[EOT] = len(vocab)
    expect_error(write_files(tmp_path, [], vocab=vocab), "vocab.json", "0x20", "byte")


def merges_text(lines):
    return "#version: 0.2\n" + "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("line", ["Ġ", "Ġ t he", "", "   ", "Ġ\tt\the"])
def test_merges_line_that_is_not_two_tokens(tmp_path, line):
    text = merges_text(["Ġ t", "h e", line, "Ġt he"])
    expect_error(write_files(tmp_path, TOY_MERGES, merges_text=text), "merges.txt", "line 4",
                 "two tokens")


def test_merges_token_outside_the_byte_alphabet(tmp_path):
    text = merges_text(["Ġ t", "h e", "Ġt\u4e00 he"])
    expect_error(write_files(tmp_path, TOY_MERGES, merges_text=text), "merges.txt", "line 4",
                 "byte alphabet")


def test_merges_token_not_in_vocab(tmp_path):
    text = merges_text(["Ġ t", "h e", "Ġt hex"])
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=good_vocab(), merges_text=text),
                 "merges.txt", "line 4", "'hex'", "not in the vocabulary")


def test_merges_result_not_in_vocab(tmp_path):
    text = merges_text(["Ġ t", "h e", "he Ġt"])
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=good_vocab(), merges_text=text),
                 "merges.txt", "line 4", "'heĠt'", "not in")


def test_merges_duplicate(tmp_path):
    text = merges_text(["Ġ t", "h e", "Ġt he", "h e"])
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=good_vocab(), merges_text=text),
                 "merges.txt", "line 5", "line 3")


def test_merges_separated_by_any_whitespace_load_as_in_openais_encoder(tmp_path):
    """encoder.py splits merge lines with str.split(): tabs and repeated spaces separate."""
    text = merges_text(["Ġ\tt", "h  e", " Ġt he ", "a\u3000a"])
    t = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES, merges_text=text))
    assert len(t.encode(" the")) == 1 and len(t.encode("aa")) == 1


def test_merges_without_header_and_with_crlf_load(tmp_path):
    text = "".join(f"{a} {b}\r\n" for a, b in TOY_MERGES)
    t = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES, merges_text=text))
    assert len(t.encode(" the")) == 1


def test_missing_file_raises_oserror(tmp_path, vocab_dir):
    with pytest.raises(FileNotFoundError):
        Tokenizer.from_files(tmp_path / "vocab.json", vocab_dir / "merges.txt")
