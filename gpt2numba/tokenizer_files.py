"""GPT-2's tokenizer files: vocab.json and merges.txt, their byte alphabet, limits and checks.

- ``vocab.json`` is one JSON object, token -> id, with ids exactly 0..n-1. It holds a token
  for every single byte and ``<|endoftext|>``.
- ``merges.txt`` lists byte-pair merges, best first: two tokens per line, after an optional
  ``#version`` line. Each merge's two tokens and their concatenation are in the vocabulary.
- Both write tokens in GPT-2's byte-to-unicode alphabet, where every byte is one printable
  character (``Ġ`` is a space, ``Ċ`` a newline): see :func:`bytes_to_unicode`.

A file can come from anyone (a Hub repo is files anybody can upload), so each is read with
bounds (by ``weights.json_file``, as config.json is): at most :data:`MAX_FILE_BYTES` (its size
is read before its contents), and JSON nested at most ``weights.json_depth.MAX_DEPTH`` deep
(checked before parsing). Every problem, a file that cannot be opened included, is a
``WeightsError`` (a model file is bad, as for the other files of a checkpoint) of one line
naming the file and, where there is one, the line.
"""

from __future__ import annotations

import codecs
import json
import operator
import re
from pathlib import Path

from gpt2numba.weights import WeightsError
from gpt2numba.weights.json_file import FileProblem, parse_json, read_utf8

#: The end-of-text token: GPT-2's only special token.
EOS_TOKEN = "<|endoftext|>"

#: Largest vocab.json or merges.txt read. GPT-2's are 1.0 MB and 0.46 MB; a file 16 times
#: larger is not a GPT-2 tokenizer, and reading it whole could take gigabytes.
MAX_FILE_BYTES = 16 << 20

# What can be wrong with a tokenizer file as a (JSON) file, in words (json_file.FileProblem's
# kinds); `what` is "vocab file" or "merges file".
_FILE_PROBLEMS = {
    "too large": ("{what} {path} is {amount}, more than the {limit_mib} MiB a tokenizer file may "
                  "be (GPT-2's are about 1 MB): it is not a GPT-2 tokenizer file"),
    "not UTF-8": "{what} {path}, line {line}: not valid UTF-8 ({reason})",
    "too deep": ("{what} {path}: JSON nested {depth} deep, more than {max_depth}; a vocab.json "
                 "is one flat object mapping token -> id"),
    "not JSON": "{what} {path}, line {line}, column {column}: not valid JSON ({reason})",
    "unusable JSON": "{what} {path}: not a usable JSON file ({error})",  # e.g. a 5000-digit id
    "not an object": "{what} {path}, line 1: expected a JSON object mapping token -> id",
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-unicode alphabet: byte value -> the character that stands for it.

    Printable Latin-1 bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves; the
    other 68 bytes map, in increasing byte order, to U+0100, U+0101, ... (so a space is ``Ġ``,
    U+0120). This is ``bytes_to_unicode`` from OpenAI's encoder.py.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + n)
            n += 1
    return dict(sorted(mapping.items()))


BYTE_ENCODER = bytes_to_unicode()
ALPHABET = frozenset(BYTE_ENCODER.values())
_NOT_ALPHABET = re.compile("[^" + "".join(map(re.escape, sorted(ALPHABET))) + "]")
# The alphabet as a charmap codec: text of tokens -> their bytes in one C call.
_TO_BYTES = codecs.charmap_build("".join(BYTE_ENCODER[b] for b in range(256)))


def token_bytes(text: str) -> bytes:
    """The bytes that token text (in the byte alphabet) stands for; UnicodeEncodeError if a
    character is not in the alphabet."""
    return codecs.charmap_encode(text, "strict", _TO_BYTES)[0]


# -------------------------------------------------------------------------------- reading

def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a tokenizer file of at most MAX_FILE_BYTES.

    The size is checked before anything is read, and no more than the limit is ever read (a
    pipe or a device has no size). WeightsError naming the file if it cannot be read (the
    OSError chained), is too large or is not UTF-8.
    """
    try:
        return read_utf8(path, MAX_FILE_BYTES)
    except OSError as e:
        raise WeightsError(f"{what} {path} cannot be read ({e}); check the file") from e
    except FileProblem as problem:
        raise _file_error(problem, what, path) from problem.__cause__


def _file_error(problem: FileProblem, what: str, path: Path) -> WeightsError:
    return WeightsError(problem.words(_FILE_PROBLEMS, what=what, path=path))


def shown(value) -> str:
    """The repr of `value`, cut after 60 characters: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


class _Pairs(list):
    """The (key, value) pairs of a JSON object, in file order (duplicates kept)."""


def parse_vocab(text: str, path: Path) -> list[tuple[str, int]]:
    """The (token, id) pairs of vocab.json's text, in file order; WeightsError naming the file
    if it is not JSON or not one object. The pairs are checked by :func:`check_vocab`."""
    try:
        return parse_json(text, _Pairs)
    except FileProblem as problem:
        raise _file_error(problem, "vocab file", path) from problem.__cause__


_COUNT_SPACES = operator.methodcaller("count", " ")


def parse_merges(text: str, path: Path) -> tuple[list[tuple[str, str]], int]:
    """The merges of merges.txt's text, best first, and the line number of the first one (2
    after a ``#version`` line, else 1). WeightsError naming the file and line if a line is not
    two tokens.

    As in OpenAI's encoder, any whitespace separates the two (tokens never hold whitespace:
    the byte alphabet has none). A file with exactly one space per line, the usual form, is
    split with C-level calls only.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    first = 2 if lines and lines[0].startswith("#version") else 1
    body = lines[first - 1:]
    if set(map(_COUNT_SPACES, body)) <= {1}:
        flat = " ".join(body).split(" ") if body else []
        return list(zip(flat[0::2], flat[1::2])), first
    merges = [tuple(line.split()) for line in body]
    for k, merge in enumerate(merges):
        if len(merge) != 2:
            raise WeightsError(f"merges file {path}, line {first + k}: expected two tokens "
                             f"separated by a space, got {shown(body[k])}")
    return merges, first


# ------------------------------------------------------------------------------- checking

class VocabError(ValueError):
    """A vocabulary's first problem; `token` and `nth` (its occurrence, from 0) say where."""

    def __init__(self, problem: str, token: str | None = None, nth: int = 0):
        super().__init__(problem)
        self.token, self.nth = token, nth


class MergeError(ValueError):
    """A merge list's first problem; `index` is the merge's (from 0), `earlier` the index of
    the merge it repeats."""

    def __init__(self, problem: str, index: int, earlier: int | None = None):
        also = "" if earlier is None else f" (first as merge {earlier})"
        super().__init__(f"merge {index}: {problem}{also}")
        self.problem, self.index, self.earlier = problem, index, earlier


def check_vocab(items: list[tuple[str, int]]) -> dict[str, int]:
    """The vocabulary of (token, id) pairs as a dict, or VocabError for its first problem.

    A vocabulary has ids exactly 0..n-1, each once, for non-empty tokens written in the byte
    alphabet, among them ``<|endoftext|>`` and every single byte.
    """
    vocab = dict(items)
    ids = list(vocab.values())
    n = len(ids)
    if (n == len(items) and n and set(map(type, ids)) == {int} and set(map(type, vocab)) == {str}
            and min(ids) == 0 and max(ids) == n - 1 and len(set(ids)) == n
            and "" not in vocab and EOS_TOKEN in vocab and ALPHABET <= vocab.keys()
            and not _NOT_ALPHABET.search("".join(vocab))):
        return vocab
    raise _vocab_problem(items)


def _vocab_problem(items: list[tuple[str, int]]) -> VocabError:
    """The first problem of a vocabulary that failed :func:`check_vocab`'s quick test."""
    if not items:
        return VocabError("the vocabulary is empty")
    by_token: dict[str, int] = {}
    by_id: dict[int, str] = {}
    for token, i in items:
        problem = _entry_problem(token, i, by_token, by_id)
        if problem is not None:
            return problem
        by_token[token] = i
        by_id[i] = token
    return _coverage_problem(by_token, by_id)


def _entry_problem(token, i, by_token: dict[str, int], by_id: dict[int, str]
                   ) -> VocabError | None:
    """The problem of the pair (token, i) after the pairs `by_token` and `by_id` hold, if any."""
    if type(token) is not str:
        return VocabError(f"token {shown(token)} is not a str")
    if token in by_token:
        return VocabError(f"token {shown(token)} appears twice", token, nth=1)
    if type(i) is not int:
        return VocabError(f"the id of token {shown(token)} is {shown(i)}, not an integer", token)
    if i < 0:
        return VocabError(f"the id of token {shown(token)} is negative ({shown(i)})", token)
    if i in by_id:
        return VocabError(f"id {shown(i)} is given to both {shown(by_id[i])} and {shown(token)}",
                          token)
    if not token:
        return VocabError("empty token", token)
    if not set(token) <= ALPHABET:
        bad = next(c for c in token if c not in ALPHABET)
        return VocabError(f"token {shown(token)} is not written in GPT-2's byte alphabet "
                          f"(bad character {bad!r})", token)
    return None


def _coverage_problem(by_token: dict[str, int], by_id: dict[int, str]) -> VocabError:
    """The problem of a vocabulary whose every pair is right: a gap in its ids, or a token it
    must have and lacks."""
    n = len(by_id)
    if max(by_id) != n - 1:
        missing = next(i for i in range(n) if i not in by_id)
        return VocabError(f"ids must be 0..{n - 1} without gaps, but id {missing} is missing "
                          f"(largest id {shown(max(by_id))})")
    if EOS_TOKEN not in by_token:
        return VocabError(f"no {EOS_TOKEN!r} token")
    b, c = next((b, c) for b, c in BYTE_ENCODER.items() if c not in by_token)
    return VocabError(f"no token for the single byte 0x{b:02x} ({c!r}); every byte must have one")


def merge_problem(vocab: dict[str, int], merges: list[tuple[str, str]]) -> MergeError:
    """The first problem of a merge list that the tokenizer could not build its tables from:
    a token that is not a str in the byte alphabet, or not in `vocab`; a merge whose result
    is not in `vocab`; a merge that repeats an earlier one."""
    seen: dict[tuple[str, str], int] = {}
    for k, (a, b) in enumerate(merges):
        for token in (a, b):
            if type(token) is not str:
                return MergeError(f"token {shown(token)} is not a str", k)
            if not set(token) <= ALPHABET:
                bad = next(c for c in token if c not in ALPHABET)
                return MergeError(f"token {shown(token)} is not written in GPT-2's byte alphabet "
                                  f"(bad character {bad!r})", k)
            if token not in vocab:
                return MergeError(f"token {shown(token)} is not in the vocabulary", k)
        if a + b not in vocab:
            return MergeError(f"the merge of {shown(a)} and {shown(b)} gives {shown(a + b)}, "
                              "which is not in the vocabulary", k)
        if (a, b) in seen:
            return MergeError(f"the merge {shown(a)} {shown(b)} appears twice", k,
                              earlier=seen[(a, b)])
        seen[(a, b)] = k
    return MergeError("the merges are inconsistent", len(merges))


# ----------------------------------------------------------------------- error locations

def locate_key(text: str, key: str | None, nth: int = 0) -> str:
    """Where the JSON object key `key` is written in `text` (its `nth` occurrence, from 0),
    as ", line L, column C", or "" if it cannot be found (or is too long to look for: a
    regular expression of a 16 MB token would take minutes to compile)."""
    if key is None or len(key) > 1000:
        return ""
    for written in dict.fromkeys((json.dumps(key, ensure_ascii=False), json.dumps(key))):
        found = list(re.finditer(r"(?<=[{,\s])" + re.escape(written) + r"\s*:", text))
        if len(found) > nth:
            pos = found[nth].start()
            line = text.count("\n", 0, pos) + 1
            column = pos - (text.rfind("\n", 0, pos) + 1) + 1
            return f", line {line}, column {column}"
    return ""
