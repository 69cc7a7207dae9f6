"""gpt2numba.tokenizer_files: reading vocab.json and merges.txt, and every way they can be bad.

Each bad file is built here; loading it must raise WeightsError (the one exception of a bad model
file) with one line that names the file (and the line, where there is one) and what is wrong.
Files from anyone are read with bounds: 16 MiB each, JSON nested at most 128 deep, the size known
before anything is read.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from gpt2numba import WeightsError
from gpt2numba.tokenizer import Tokenizer
from support.tokenizer_corpus import BYTE_TOKENS, EOT, TOY_MERGES, toy_vocab, write_files

LIMIT = 16 << 20  # 16 MiB: the stated limit of each file


def expect_error(vocab_merges, *fragments):
    """The message of the WeightsError that loading the pair raises: one line, with every
    fragment in it."""
    with pytest.raises(WeightsError) as info:
        Tokenizer.from_files(*vocab_merges)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------------- malformed files

def test_a_good_toy_pair_loads(tmp_path):
    Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES))


def test_vocab_not_json(tmp_path):
    text = json.dumps(toy_vocab(), indent=0, ensure_ascii=False)
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
    text = json.dumps(toy_vocab(), indent=0, ensure_ascii=False)
    text = text.replace('"$": 3,', f'"$": {value},')
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json", "line 5",
                 "'$'", "not an integer")


def test_vocab_negative_id(tmp_path):
    vocab = toy_vocab()
    vocab["$"] = -3
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json", "line 5",
                 "negative")


def test_vocab_duplicate_id(tmp_path):
    vocab = toy_vocab()
    vocab["$"] = 2
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json", "line 5",
                 "id 2", "'#'", "'$'")


def test_vocab_duplicate_token(tmp_path):
    text = json.dumps(toy_vocab(), indent=0, ensure_ascii=False)
    text = text.replace('"$": 3,', '"$": 3,\n"#": 7,')
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json",
                 "line 6", "'#'", "appears twice")


def test_vocab_without_endoftext(tmp_path):
    vocab = toy_vocab()
    del vocab[EOT]
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json",
                 "<|endoftext|>")


@pytest.mark.parametrize("token", ["a b", "tab\t", "new\nline", "Ā\u0300", "\u3000", ""])
def test_vocab_token_outside_the_byte_alphabet(tmp_path, token):
    vocab = toy_vocab()
    vocab[token] = len(vocab)
    msg = expect_error(write_files(tmp_path, TOY_MERGES, vocab=vocab), "vocab.json",
                       f"line {len(vocab) + 1}")
    assert "byte alphabet" in msg or "empty token" in msg


def test_vocab_with_a_gap_in_ids(tmp_path):
    vocab = toy_vocab()
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
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=toy_vocab(), merges_text=text),
                 "merges.txt", "line 4", "'hex'", "not in the vocabulary")


def test_merges_result_not_in_vocab(tmp_path):
    text = merges_text(["Ġ t", "h e", "he Ġt"])
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=toy_vocab(), merges_text=text),
                 "merges.txt", "line 4", "'heĠt'", "not in")


def test_merges_duplicate(tmp_path):
    text = merges_text(["Ġ t", "h e", "Ġt he", "h e"])
    expect_error(write_files(tmp_path, TOY_MERGES, vocab=toy_vocab(), merges_text=text),
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


def test_a_file_that_cannot_be_read_is_a_weights_error_naming_it(tmp_path, vocab_dir):
    with pytest.raises(WeightsError) as info:
        Tokenizer.from_files(tmp_path / "vocab.json", vocab_dir / "merges.txt")
    message = str(info.value)
    assert "\n" not in message and f"vocab file {tmp_path / 'vocab.json'} cannot be read" in message
    assert isinstance(info.value.__cause__, FileNotFoundError)
    (tmp_path / "merges.txt").mkdir()
    with pytest.raises(WeightsError, match="merges file .* cannot be read") as info:
        Tokenizer.from_files(vocab_dir / "vocab.json", tmp_path / "merges.txt")
    assert isinstance(info.value.__cause__, IsADirectoryError)


def test_vocab_id_too_long_for_python_names_the_file(tmp_path):
    """json.loads raises a plain ValueError (not JSONDecodeError) for a 5000-digit integer."""
    text = json.dumps(toy_vocab(), indent=0).replace('"$": 3,', '"$": ' + "9" * 5000 + ",")
    msg = expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json")
    assert str(tmp_path) in msg


# ------------------------------------------------------------------------ hostile files

@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 100_000,
                                  '{"!": ' + "[" * 5000 + "0" + "]" * 5000 + "}"],
                         ids=["arrays", "objects", "closed"])
def test_deeply_nested_vocab_json_is_one_line_not_a_recursion_error(tmp_path, text):
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json",
                 str(tmp_path), "more than 128; a vocab.json")


def test_nesting_up_to_the_limit_is_read_as_json(tmp_path):
    """100 levels (an id written inside 99 arrays) is JSON we read: the error is the id's."""
    text = json.dumps(toy_vocab(), indent=0).replace('"$": 3,', '"$": ' + "[" * 99 + "3"
                                                     + "]" * 99 + ",")
    expect_error(write_files(tmp_path, TOY_MERGES, vocab_text=text), "vocab.json", "line 5",
                 "not an integer")


def test_brackets_and_escapes_inside_tokens_are_not_nesting(tmp_path):
    """Hundreds of brackets written inside tokens (with escaped quotes and backslashes beside
    them) are text, not depth: the file loads."""
    vocab = toy_vocab()
    del vocab[EOT]
    for k in range(2, 120):
        vocab["[" * k] = len(vocab)
        vocab['\\"{' * k] = len(vocab)
    vocab[EOT] = len(vocab)
    text = json.dumps(vocab, indent=0)
    assert text.count("[") + text.count("{") > 10_000
    tok = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES, vocab_text=text))
    assert tok.vocab_size == len(vocab)


def sparse_file(path, size):
    """A file of `size` zero bytes that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("name", ["vocab.json", "merges.txt"])
def test_a_file_over_16_mib_is_refused_naming_its_size_and_the_limit(tmp_path, name):
    paths = write_files(tmp_path, TOY_MERGES)
    sparse_file(tmp_path / name, LIMIT + 1)
    expect_error(paths, str(tmp_path / name), f"{LIMIT + 1} bytes", "16 MiB")


def test_a_file_of_exactly_16_mib_is_read(tmp_path):
    """The limit is inclusive: 16 MiB of merges (blank lines are not merges) is parsed, and
    fails on its content, not its size."""
    paths = write_files(tmp_path, TOY_MERGES)
    merges = "#version: 0.2\nĠ t\n"
    paths[1].write_text(merges + "Ġt he\n" * ((LIMIT - len(merges.encode())) // 7)
                        + "\n" * ((LIMIT - len(merges.encode())) % 7), encoding="utf-8")
    assert paths[1].stat().st_size == LIMIT
    expect_error(paths, "merges.txt", "line 4", "appears twice", "line 3")


# A child process loads the pair with its address space capped 1 GiB above what it holds after
# import (so today's unbounded reads fail instead of taking the machine), and reports the error
# and how far its peak resident memory (VmHWM, reset after import) rose while loading.
PEAK_PROBE = """
import json, re, resource, sys
from gpt2numba.tokenizer import Tokenizer

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))

cap = status("VmSize") * 1024 + (1 << 30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
try:
    Tokenizer.from_files(sys.argv[1], sys.argv[2])
    error = None
except Exception as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"error": error, "rise_mib": (status("VmHWM") - before) / 1024}))
"""


def peak_of_loading(vocab, merges):
    run = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(vocab), str(merges)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_refusing_a_huge_vocab_json_reads_none_of_it(tmp_path):
    """A 1 GiB vocab.json (sparse) is refused from its size: memory does not rise by it."""
    vocab, merges = write_files(tmp_path, TOY_MERGES)
    sparse_file(vocab, 1 << 30)
    seen = peak_of_loading(vocab, merges)
    assert seen["error"].startswith("WeightsError: ") and "16 MiB" in seen["error"], seen
    assert seen["rise_mib"] < 8, seen


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_merges_file_is_refused_after_16_mib(tmp_path):
    """/dev/zero has no size: reading stops one byte past the limit."""
    vocab, _ = write_files(tmp_path, TOY_MERGES)
    seen = peak_of_loading(vocab, "/dev/zero")
    assert seen["error"].startswith("WeightsError: merges file /dev/zero is endless"), seen
    assert "16 MiB" in seen["error"], seen
    assert seen["rise_mib"] < 40, seen


# --------------------------------------------------------------- tokenizer against model

def test_the_gpt2_vocabulary_fits_a_gpt2_model(vocab_dir):
    tok = Tokenizer.from_files(vocab_dir / "vocab.json", vocab_dir / "merges.txt")
    tok.check_model(50257, vocab_dir / "config.json")


def test_a_vocabulary_smaller_than_the_model_is_refused_naming_both_files(tmp_path):
    vocab, merges = write_files(tmp_path, TOY_MERGES)
    tok = Tokenizer.from_files(vocab, merges)
    config = tmp_path / "config.json"
    for vocab_size in (50257, tok.vocab_size - 1):
        with pytest.raises(WeightsError) as info:
            tok.check_model(vocab_size, config)
        message = str(info.value)
        assert "\n" not in message
        for fragment in (str(vocab), str(config), f"{tok.vocab_size} tokens",
                         f"vocab_size {vocab_size}"):
            assert fragment in message, message


def test_endoftext_must_be_the_models_last_id(tmp_path):
    """Same size, but <|endoftext|> is id 256 and the model ends text with its last id."""
    vocab = {t: i for i, t in enumerate(BYTE_TOKENS)}
    vocab[EOT] = len(vocab)
    for a, b in TOY_MERGES:
        vocab[a + b] = len(vocab)
    tok = Tokenizer.from_files(*write_files(tmp_path, TOY_MERGES, vocab=vocab))
    config = tmp_path / "config.json"
    with pytest.raises(WeightsError) as info:
        tok.check_model(len(vocab), config)
    message = str(info.value)
    for fragment in (str(tmp_path / "vocab.json"), str(config), "id 256",
                     f"id {len(vocab) - 1}"):
        assert fragment in message, message


def broken_copy(checkpoint, folder, change):
    """A copy of `checkpoint` in `folder` (model.safetensors linked, not copied), then
    `change(folder)` breaks its tokenizer files."""
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copyfile(checkpoint / name, folder / name)
    (folder / "model.safetensors").symlink_to(checkpoint / "model.safetensors")
    change(folder)
    return folder


@pytest.mark.parametrize("change,words", [
    (lambda f: (f / "vocab.json").write_text('{"!": 0,,}'), ["vocab.json", "not valid JSON"]),
    (lambda f: (f / "merges.txt").write_bytes(b"#version: 0.2\n\xff \xfe\n"),
     ["merges.txt", "line 2", "UTF-8"]),
    (lambda f: (f / "merges.txt").write_text("#version: 0.2\nab\n"), ["merges.txt", "two tokens"]),
    (lambda f: write_files(f, TOY_MERGES), ["vocab.json", "261 tokens", "config.json"]),
], ids=["vocab-not-json", "merges-not-utf8", "merges-line", "vocab-not-the-models"])
def test_a_bad_tokenizer_file_of_a_model_is_a_weights_error(tiny_checkpoint, tmp_path, change,
                                                            words):
    """A model folder's four files fail alike: GPT2.from_pretrained raises WeightsError, whichever
    file is bad (a ValueError before, for the tokenizer's two)."""
    from gpt2numba import GPT2

    folder = broken_copy(tiny_checkpoint, tmp_path / "model", change)
    with pytest.raises(WeightsError) as info:
        GPT2.from_pretrained(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message, message
    for fragment in words:
        assert fragment in message, message


def test_a_tokenizer_built_from_memory_names_no_file(tmp_path):
    tok = Tokenizer(toy_vocab(), TOY_MERGES)
    with pytest.raises(WeightsError, match="the vocabulary has 261 tokens but cfg gives"):
        tok.check_model(50257, "cfg")


# --------------------------------------------------------------- built from memory

@pytest.mark.parametrize("vocab, merges, fragment", [
    ({}, [], "empty"),
    ({**toy_vocab(), "$": True}, TOY_MERGES, "not an integer"),
    ({**toy_vocab(), "x y": 261}, TOY_MERGES, "byte alphabet"),
    ({k: v for k, v in toy_vocab().items() if k != EOT}, TOY_MERGES, "<|endoftext|>"),
    (toy_vocab(), TOY_MERGES + [("Ġ", "t")], "merge 4: the merge 'Ġ' 't' appears twice"),
    (toy_vocab(), [("Ġt", "hex")], "merge 0: token 'hex' is not in the vocabulary"),
    (toy_vocab(), [("Ġ", 1)], "merge 0: token 1 is not a str"),
    (toy_vocab(), ["Ġt"], "pair of tokens"),
])
def test_init_checks_what_it_is_given(vocab, merges, fragment):
    with pytest.raises(ValueError) as info:
        Tokenizer(vocab, merges)
    assert fragment in str(info.value)


@pytest.mark.parametrize("where", ["merges", "vocab"])
def test_a_huge_bad_line_or_token_is_shown_cut_short(tmp_path, where):
    junk = "x y z" + "\u4e00" * 1_000_000
    if where == "merges":
        paths = write_files(tmp_path, TOY_MERGES, merges_text="#version: 0.2\n" + junk + "\n")
    else:
        paths = write_files(tmp_path, TOY_MERGES, vocab={**toy_vocab(), junk: 261})
    assert len(expect_error(paths, "...")) < 500
