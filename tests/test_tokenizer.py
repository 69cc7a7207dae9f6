"""gpt2numba.tokenizer: the API, decoding and streaming, loading, the word cache.

(The files and their errors: test_tokenizer_files.py; the merge loops: test_tokenizer_bpe.py.)
"""

import shutil
import threading
import time

import numpy as np
import pytest

from gpt2numba import tokenizer as tokmod
from gpt2numba.tokenizer import Tokenizer
from support.tokenizer_corpus import (
    CJK,
    EMOJI,
    EOT,
    TOY_MERGES,
    corpus,
    gpt2_tokenizer,
    oracle,
    toy_vocab,
    write_files,
)


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

def test_toy_vocabulary(tmp_path):
    t = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES))
    ids = t.encode(" the")
    assert len(ids) == 1 and t.decode(ids) == " the"
    assert t.vocab_size == 256 + 4 + 1 and t.eos_id == 260
    assert t.encode("aaaaa") == [259, 259, t.encode("a")[0]]  # left to right, no overlap


def test_init_from_memory_is_the_tokenizer_from_files(tmp_path):
    """from_files parses and builds through __init__: the same tables from either way in."""
    from_files = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES))
    for vocab in (toy_vocab(), list(toy_vocab().items())):
        in_memory = Tokenizer(vocab, TOY_MERGES)
        assert repr(in_memory) == repr(from_files)
        for text in (" the", "aaaaa", "the heath", EOT):
            assert in_memory.encode(text) == from_files.encode(text)



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
