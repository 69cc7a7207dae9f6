"""GPT-2's byte-level BPE tokenizer (vocab.json + merges.txt), byte-exact with OpenAI's encoder.

How GPT-2 turns text into token ids, in three steps:

1. Pre-tokenisation. A regular expression cuts the text into pieces: the contractions
   ``'s 't 're 've 'm 'll 'd`` (lowercase only), then runs of letters, runs of digits and runs
   of other symbols, each optionally preceded by one space, then runs of whitespace. "Letter"
   and "digit" are the Unicode categories ``\\p{L}`` and ``\\p{N}``, not ASCII. Pieces never
   merge with each other. (:mod:`gpt2numba.tokenizer_unicode`: the pattern and its tables.)
2. Bytes. Each piece is encoded as UTF-8. Every byte is one starting token (ids 0..255 in
   GPT-2, though not in byte-value order), so any text can be encoded.
3. Byte-pair merges. merges.txt lists pairs of tokens, highest priority first. Within a piece,
   the adjacent pair with the best (lowest) rank is merged everywhere it occurs, left to right,
   and this repeats until no adjacent pair is in the list. (:mod:`gpt2numba.tokenizer_bpe`:
   :func:`bpe_reference`, that loop written plainly, and the fast one the tokenizer runs.)

The files write tokens in GPT-2's byte-to-unicode alphabet (``Ġ`` is a space, ``Ċ`` a newline):
:mod:`gpt2numba.tokenizer_files` reads and checks them.

The special token ``<|endoftext|>`` (id 50256) is never produced from text unless asked for:
``encode(text)`` treats the literal string as ordinary text, ``encode(text, allow_special=True)``
turns it into the special id.
"""

from __future__ import annotations

import codecs
import operator
from collections.abc import Iterable, Mapping
from pathlib import Path

from gpt2numba.tokenizer_bpe import BytePairEncoder, bpe_reference
from gpt2numba.tokenizer_files import (
    EOS_TOKEN,
    MergeError,
    VocabError,
    bytes_to_unicode,
    check_vocab,
    locate_key,
    parse_merges,
    parse_vocab,
    read_text,
    token_bytes,
)
from gpt2numba.tokenizer_unicode import GPT2_PATTERN, PATTERN, UNICODE_VERSION
from gpt2numba.weights import WeightsError

__all__ = [
    "Tokenizer", "StreamDecoder", "bpe_reference", "bytes_to_unicode", "GPT2_PATTERN",
    "UNICODE_VERSION", "EOS_TOKEN",
]

# The word cache keeps at most this many pieces (about 280 bytes each: ~18 MB); when full it
# is emptied and refilled. Bounded because a long-running process fed novel text (random
# strings, many languages) would otherwise grow it without end; emptying is O(1) amortised and
# costs nothing per hit, unlike an LRU. 65536 is 5x the distinct pieces of 1 MB of English.
_CACHE_MAX = 1 << 16


class StreamDecoder:
    """Turns token ids, one at a time, into text as soon as it is complete.

    A token may end in the middle of a multi-byte UTF-8 character (emoji and CJK are often
    split across tokens). ``push`` holds such bytes back until the character is complete, so
    valid text streamed token by token never shows U+FFFD. Bytes that can never become valid
    UTF-8 are replaced by U+FFFD as soon as that is certain. ``flush`` ends the stream.
    Get one from :meth:`Tokenizer.stream_decoder`.
    """

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """Add one token id; return the text it completes (possibly "")."""
        data = self._tokenizer.decode_bytes([token_id])
        return self._decoder.decode(data, final=False)

    def flush(self) -> str:
        """End the stream: return what is left, an incomplete character as U+FFFD."""
        out = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return out


class Tokenizer:
    """GPT-2's byte-level BPE tokenizer.

    Build it with :meth:`from_files` (a vocab.json and a merges.txt) or :meth:`from_pretrained`
    (a Hub model name or a local folder). ``encode`` and ``decode`` give the same ids and bytes
    as OpenAI's GPT-2 encoder (and as tiktoken's ``gpt2`` encoding).

    Encoding keeps a cache of the BPE result of each pre-tokenised piece (a dict of at most
    65536 pieces, about 18 MB, emptied when full, so memory stays bounded on endless streams
    of novel text). Instances are safe to share between threads.
    """

    def __init__(self, vocab: Mapping[str, int] | Iterable[tuple[str, int]],
                 merges: Iterable[tuple[str, str]], *, vocab_file: str | Path | None = None):
        """Build from a vocabulary (token -> id, a dict or (token, id) pairs in file order)
        and a merge list (pairs of tokens, best first), both written in the byte alphabet.

        The vocabulary must hold ``<|endoftext|>`` and a token for every single byte, with ids
        0..n-1; every merge's operands and result must be in it, and no merge may appear
        twice. Otherwise ValueError (:class:`~gpt2numba.tokenizer_files.VocabError` or
        :class:`~gpt2numba.tokenizer_files.MergeError`, saying where). `vocab_file` is where
        the vocabulary came from, named by :meth:`check_model`.
        """
        vocab = check_vocab(list(vocab.items() if isinstance(vocab, Mapping) else vocab))
        merges = list(merges)
        if not (set(map(type, merges)) <= {tuple, list} and set(map(len, merges)) <= {2}):
            raise ValueError("each merge must be a pair of tokens")
        self.vocab_file = vocab_file
        self._n_vocab = n = len(vocab)
        self._eos_id = vocab[EOS_TOKEN]

        # id -> token text; decoding turns the text of many tokens into bytes in one call.
        # (GPT-2's vocab.json lists tokens in id order: no sort needed.)
        in_order = list(vocab.values()) == list(range(n))
        self._tokens = tokens = list(vocab) if in_order else sorted(vocab, key=vocab.__getitem__)
        self._bpe = BytePairEncoder(vocab, tokens, merges)
        self._pattern = PATTERN
        self._cache: dict[str, list[int]] = {}

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def from_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> Tokenizer:
        """Load GPT-2's ``vocab.json`` and ``merges.txt``.

        Raises ``weights.WeightsError`` (as for any bad file of a model), one line naming the
        file (and the line, where there is one), when a file cannot be read (the OSError
        chained), is larger than 16 MiB, nested too deep, not UTF-8 or not JSON, or breaks a
        rule of :meth:`__init__`; a merges line that is not two tokens.
        """
        vocab_json, merges_txt = Path(vocab_json), Path(merges_txt)
        vocab_text = read_text(vocab_json, "vocab file")
        pairs = parse_vocab(vocab_text, vocab_json)
        merges, first_line = parse_merges(read_text(merges_txt, "merges file"), merges_txt)
        try:
            return cls(pairs, merges, vocab_file=vocab_json)
        except VocabError as e:
            where = locate_key(vocab_text, e.token, e.nth)
            raise WeightsError(f"vocab file {vocab_json}{where}: {e}") from e
        except MergeError as e:
            also = "" if e.earlier is None else f" (first on line {first_line + e.earlier})"
            raise WeightsError(
                f"merges file {merges_txt}, line {first_line + e.index}: {e.problem}{also}"
            ) from e

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None) -> Tokenizer:
        """Load the tokenizer of a Hub model (``"gpt2"``, ``"openai-community/gpt2"``, ...) or
        of a local folder holding ``vocab.json`` and ``merges.txt``.

        Files are found by :func:`weights.resolve` (Hub cache, ``HF_HOME``, offline mode and
        ``revision`` honoured). Every failure, of finding or of reading the files, is a
        ``weights.WeightsError``.
        """
        from gpt2numba.weights import TOKENIZER_FILES, resolve

        folder = Path(resolve(name_or_path, revision=revision, files=TOKENIZER_FILES))
        return cls.from_files(folder / "vocab.json", folder / "merges.txt")

    def check_model(self, vocab_size: int, config_file: str | Path) -> None:
        """Check that this is the vocabulary of a model with `vocab_size` token embeddings
        (config_file's ``vocab_size``): exactly that many tokens, ``<|endoftext|>`` the last.

        Raises ``weights.WeightsError``, one line naming both files and sizes, when they do
        not belong together: the model would be given ids it has no embedding for, produce ids the
        tokenizer cannot decode, or stop at the wrong id. The model calls it at load.
        """
        vocab = f"vocab file {self.vocab_file}" if self.vocab_file else "the vocabulary"
        if self._n_vocab != vocab_size:
            raise WeightsError(
                f"{vocab} has {self._n_vocab} tokens but {config_file} gives vocab_size "
                f"{vocab_size}: the tokenizer is not this model's; use the vocab.json and "
                "merges.txt that came with the model"
            )
        if self._eos_id != vocab_size - 1:
            raise WeightsError(
                f"{vocab} has {EOS_TOKEN!r} at id {self._eos_id}, but the model of {config_file} "
                f"(vocab_size {vocab_size}) ends text with id {vocab_size - 1}: the tokenizer "
                "is not this model's"
            )

    # ---------------------------------------------------------------------------- properties

    @property
    def vocab_size(self) -> int:
        """Number of token ids (50257 for GPT-2); valid ids are 0..vocab_size-1."""
        return self._n_vocab

    @property
    def eos_id(self) -> int:
        """Id of ``<|endoftext|>`` (50256 for GPT-2)."""
        return self._eos_id

    @property
    def eos_token(self) -> str:
        """The end-of-text token string, ``"<|endoftext|>"``."""
        return EOS_TOKEN

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self._n_vocab}, merges={len(self._bpe)})"

    # ------------------------------------------------------------------------------ encoding

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Token ids of `text`, exactly as GPT-2's encoder gives them.

        With ``allow_special=False`` (the default) the literal ``"<|endoftext|>"`` is ordinary
        text (several tokens), as in tiktoken's ``encode_ordinary``. With ``allow_special=True``
        each occurrence becomes the single id :attr:`eos_id`.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, not {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates have no UTF-8: as tiktoken does, join valid surrogate pairs and
            # make each lone one U+FFFD.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if not allow_special or EOS_TOKEN not in text:
            return self._encode_ordinary(text)
        ids: list[int] = []
        parts = text.split(EOS_TOKEN)
        for k, part in enumerate(parts):
            if k:
                ids.append(self._eos_id)
            if part:
                ids += self._encode_ordinary(part)
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        get = cache.get
        ids: list[int] = []
        extend = ids.extend
        for piece in self._pattern.findall(text):
            found = get(piece)
            if found is None:
                found = self._bpe(piece.encode("utf-8"))
                if len(cache) >= _CACHE_MAX:
                    # Bounded memory: start afresh. (Another thread using the cache only
                    # sees misses, which it recomputes: clearing is safe.)
                    cache.clear()
                cache[piece] = found
            extend(found)
        return ids

    # ------------------------------------------------------------------------------ decoding

    def _check_ids(self, ids) -> list[int]:
        """`ids` as a list of valid ints, or ValueError naming the first bad one."""
        n = self._n_vocab
        out = []
        for i in ids:
            if type(i) is not int:
                if isinstance(i, bool):
                    raise ValueError(f"token id {i!r} is a bool, not an id in 0..{n - 1}")
                try:
                    i = operator.index(i)
                except TypeError:
                    raise ValueError(
                        f"token id {i!r} is not an integer; valid ids are 0..{n - 1}"
                    ) from None
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is out of range; valid ids are 0..{n - 1}")
            out.append(i)
        return out

    def decode_bytes(self, ids) -> bytes:
        """The raw bytes of token ids; ids may split a multi-byte UTF-8 character.

        Raises ValueError for an id that is not an integer in 0..vocab_size-1.
        """
        tokens = self._tokens
        if not isinstance(ids, (list, tuple)):
            ids = list(ids)
        try:
            if all(type(i) is int and i >= 0 for i in ids):
                return token_bytes("".join([tokens[i] for i in ids]))
        except IndexError:
            pass
        return token_bytes("".join([tokens[i] for i in self._check_ids(ids)]))

    def decode(self, ids) -> str:
        """The text of token ids; an incomplete or invalid UTF-8 sequence becomes U+FFFD.

        Raises ValueError for an id that is not an integer in 0..vocab_size-1.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        """A fresh :class:`StreamDecoder` for turning generated ids into text as they come."""
        return StreamDecoder(self)
