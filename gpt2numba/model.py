"""GPT2: load a checkpoint, run the forward, generate text, score text."""

from dataclasses import replace
from types import SimpleNamespace

import numba
import numpy as np

from gpt2numba import runtime
from gpt2numba.blocks import FORWARD_KERNELS, TRANSFORMER_KERNELS, gpt2, packed, transformer
from gpt2numba.config import GPT2Config
from gpt2numba.errors import ArgumentError, check_in_vocabulary, is_count
from gpt2numba.generate import Generation, TextStream
from gpt2numba.kernels import head_log_softmax_at
from gpt2numba.params import load_folder
from gpt2numba.score import (
    Score,
    check_stride,
    ids_to_score,
    score_packed,
    score_tokens,
    scored_bytes,
)
from gpt2numba.score_details import score_with_details
from gpt2numba.tokenizer import Tokenizer
from gpt2numba.weights import fetch

SCORING_KERNELS = (*TRANSFORMER_KERNELS, head_log_softmax_at)


class GPT2:
    """OpenAI's GPT-2 with Numba kernels. Build it with GPT2.from_pretrained."""

    def __init__(self, config: GPT2Config, params: SimpleNamespace, tokenizer: Tokenizer, name="",
                 threads=None):
        self.config = config
        self.params = params
        self.tokenizer = tokenizer
        self.name = name
        self.threads = threads
        self.load_report = None   # a runtime.LoadReport, when from_pretrained built the model

    @property
    def threads(self):
        """Threads of every forward: an int, or None (the default) for the cores other processes
        leave idle at each forward, at most numba.get_num_threads() of the calling thread."""
        return self._threads

    @threads.setter
    def threads(self, threads):
        most = numba.config.NUMBA_NUM_THREADS
        if threads is not None and not (is_count(threads) and 1 <= threads <= most):
            raise ArgumentError("threads", f"threads must be None or an integer from 1 to {most} "
                                           f"(NUMBA_NUM_THREADS), got {threads!r}")
        self._threads = None if threads is None else int(threads)

    @classmethod
    def from_pretrained(cls, name_or_path, revision=None, *, threads=None) -> "GPT2":
        """Load "gpt2" / "gpt2-medium" / "gpt2-large" / "gpt2-xl" / "distilgpt2", any Hub repo id
        of a GPT-2, or a local folder with config.json, model.safetensors, vocab.json, merges.txt.

        Hub files go through huggingface_hub's cache (HF_HOME, HF_HUB_OFFLINE, HF_TOKEN,
        HF_ENDPOINT honoured); `revision` pins a branch, tag or commit. `threads`: see
        GPT2.threads. Raises WeightsError with a one-sentence explanation when anything is
        missing or wrong. The model's `load_report` (runtime.LoadReport) says how long the
        download, the load and any compile took.
        """
        with runtime.loading(threads) as clock:
            folder, downloaded = fetch(name_or_path, revision=revision)
            clock.files_ready(downloaded)
            config, params, tokenizer = load_folder(folder)
        model = cls(config, params, tokenizer, name=str(name_or_path), threads=threads)
        model.load_report = clock.report
        return model

    def __repr__(self):
        c = self.config
        return (f"GPT2({self.name!r}: n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
                f"n_positions={c.n_positions}, vocab_size={c.vocab_size})")

    def check_ids(self, ids, argument="ids"):
        """ids as an int64 array, or ArgumentError naming what is wrong (empty, too long, out of
        range); `argument` is the caller's name for them."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ArgumentError(argument, f"{argument} must be a non-empty 1-D sequence of "
                                          f"integer token ids")
        if ids.size > self.config.n_positions:
            raise ArgumentError(argument, f"the input is {ids.size} tokens; the model's context "
                                          f"holds at most {self.config.n_positions} (n_positions)")
        check_in_vocabulary(ids, self.config.vocab_size, argument)
        return ids.astype(np.int64)

    def logits(self, ids, from_position=0) -> np.ndarray:
        """ids [n] (1 <= n <= n_positions) -> float32 logits [n - from_position, vocab_size] of
        positions from_position..n-1 (every position by default)."""
        ids = self.check_ids(ids)
        if not (is_count(from_position) and 0 <= from_position < ids.size):
            raise ArgumentError("from_position", f"from_position must be an integer in "
                                                 f"0..{ids.size - 1}, got {from_position!r}")
        return self._forward(ids, int(from_position))

    def next_token_logits(self, ids) -> np.ndarray:
        """ids [n] -> float32 logits [vocab_size] of the last position only (the head on one
        row)."""
        ids = self.check_ids(ids)
        return self._forward(ids, ids.size - 1)[0]

    def packed_logits(self, id_lists) -> list[np.ndarray]:
        """The logits of every position of each sequence of token ids in `id_lists`, all in
        one forward: float32 [n_i, vocab_size] per sequence, each as logits(ids) gives it
        within float32 rounding. The sequences are packed one after another, each at positions
        from 0 and attending to its own tokens only (see blocks.py); together they hold at most
        n_positions ids (ArgumentError naming "id_lists" otherwise)."""
        id_lists = [self.check_ids(ids, "id_lists") for ids in id_lists]
        lengths = self._packed_lengths(id_lists)
        ids, positions = packed(id_lists)
        return np.split(self._forward(ids, 0, positions), np.cumsum(lengths)[:-1])

    def packed_next_token_logits(self, id_lists) -> np.ndarray:
        """The next-token logits of each sequence of token ids in `id_lists`, all in one
        forward: float32 [len(id_lists), vocab_size], row i the logits of the last position of
        id_lists[i], as next_token_logits(id_lists[i]) gives it within float32 rounding. Packed
        as packed_logits packs them (at most n_positions ids in all; ArgumentError naming
        "id_lists" otherwise), with the head computed on each sequence's last row only."""
        id_lists = [self.check_ids(ids, "id_lists") for ids in id_lists]
        lengths = self._packed_lengths(id_lists)
        if len(id_lists) == 1:   # alone, its last block too computes its last row only
            return self._forward(id_lists[0], lengths[0] - 1)
        ids, positions = packed(id_lists)
        return self._forward(ids, 0, positions, np.cumsum(lengths) - 1)

    def _packed_lengths(self, id_lists) -> list[int]:
        """The lengths of the checked id_lists; ArgumentError unless 1..n_positions in all."""
        lengths = [ids.size for ids in id_lists]
        if not lengths or sum(lengths) > self.config.n_positions:
            raise ArgumentError("id_lists", f"id_lists must hold 1 to {self.config.n_positions} "
                                            f"ids in all (n_positions), got {sum(lengths)}")
        return lengths

    def _forward(self, ids, head_from, positions=None, head_rows=None):
        positions = np.arange(ids.size) if positions is None else positions
        with runtime.running(self.threads, FORWARD_KERNELS):
            return gpt2(ids, positions, self.params, self.config.n_head,
                        self.config.layer_norm_epsilon, head_from, head_rows)

    def _window_logprobs(self, ids, first, targets):
        """float64 log p of targets [n - first], given by the logits of positions first..n-1 of
        one text's ids [n]: a scoring window's forward and log-softmax."""
        return self._logprobs(ids, np.arange(ids.size), first, targets)

    def _packed_logprobs(self, inputs, targets):
        """float64 log p of targets [n], given by the logits of every row of the texts' ids
        `inputs` packed into one forward (blocks.packed): see gpt2numba.score."""
        ids, positions = packed(inputs)
        return self._logprobs(ids, positions, 0, targets)

    def _logprobs(self, ids, positions, first, targets):
        """A forward from row `first` and its log-softmax at targets [n - first], in one run of
        the kernels; the head's logits are never held (kernels.head_log_softmax_at)."""
        with runtime.running(self.threads, SCORING_KERNELS):
            h = transformer(ids, positions, self.params, self.config.n_head,
                            self.config.layer_norm_epsilon, first)   # [n - first, n_embd]
            return head_log_softmax_at(h, self.params.wte.weight, targets)

    def stream(self, prompt, max_new_tokens=50, **options) -> TextStream:
        """The continuation of `prompt`, an iterator of text pieces (UTF-8 safe) as they come.

        An empty prompt conditions on <|endoftext|>, as GPT-2's unconditional samples do.
        options: temperature (0, greedy), top_k (0, off), top_p (1.0, off), repetition_penalty
        (1.0, off), seed, stop (strings that end the text, not included), stop_at_eos (True),
        slide (False: stop when the context is full; True: go on with the last n_positions
        tokens). A bad value raises ArgumentError (a ValueError) naming the argument, here and
        not at the first piece. After iteration the stream holds stop_reason, stopped_because,
        new_ids, seconds and first_token_seconds; a full context warns (ContextFullWarning).
        """
        return self._stream(self.tokenizer.encode(prompt), "prompt", max_new_tokens, **options)

    def generate(self, prompt, max_new_tokens=50, **options) -> str:
        """The continuation of `prompt` as one string (the prompt is not repeated); options as
        for `stream`."""
        return "".join(self.stream(prompt, max_new_tokens, **options))

    def generate_ids(self, ids, max_new_tokens=50, **options) -> list[int]:
        """The new token ids after `ids` (not the prompt); options as for `stream`. With `stop`,
        the ids end before the token that completed a stop string."""
        stream = self._stream(ids, "ids", max_new_tokens, **options)
        for _ in stream:
            pass
        return stream.new_ids[:-1] if stream.stop_reason == "stop" else list(stream.new_ids)

    def score_ids(self, ids, stride=None, *, details=False, top_k=0, progress=None) -> Score:
        """Score token ids [N] of any length: log p of tokens 1..N-1, each given the tokens before
        it in windows of n_positions that start every `stride` tokens (see gpt2numba.score),
        and bits per byte.

        stride: 1..n_positions, default n_positions // 2. details=True (or top_k > 0) adds
        Score.details (ranks, entropies, the top_k alternatives, 0..20, and what Score.words()
        needs: gpt2numba.score_details). ArgumentError (a ValueError) naming the argument for a
        stride or top_k out of range, ids out of range or fewer than 2 ids (nothing to score:
        "ids"). progress(scored, total) is called after each window.
        """
        return self._score(ids, stride, details, top_k, progress, "ids")

    def score(self, text, stride=None, *, details=False, top_k=0, progress=None) -> Score:
        """Score `text` (tokenized as it is, no <|endoftext|> added): see score_ids. A text of
        fewer than 2 tokens is an ArgumentError naming "text"."""
        return self._score(self.tokenizer.encode(text), stride, details, top_k, progress, "text")

    def _score(self, ids, stride, details, top_k, progress, argument):
        if details or top_k:
            return score_with_details(self, ids, stride, top_k, progress, argument)
        score = score_tokens(self._window_logprobs, ids, self.config, stride, progress, argument)
        return replace(score, scored_bytes=scored_bytes(self.tokenizer, ids))

    def score_many(self, texts, stride=None) -> list[Score]:
        """One Score per text of `texts` (any iterable of str), each as `score` gives it: the
        texts of at most n_positions + 1 tokens packed many to a forward, longer ones in
        windows (see gpt2numba.score). ArgumentError naming "text" for a text of fewer than 2
        tokens, and "texts" for a single str or bytes, which would be scored character by
        character."""
        if isinstance(texts, (str, bytes, bytearray, memoryview)):
            raise ArgumentError("texts", f"texts must be an iterable of texts, not one "
                                         f"{type(texts).__name__}: pass a list of texts, such as "
                                         f"score_many([text]), or call score(text)")
        stride = check_stride(stride, self.config.n_positions)
        return self._score_packed([self.tokenizer.encode(text) for text in texts], stride, "text")

    def score_many_ids(self, id_lists, stride=None) -> list[Score]:
        """One Score per sequence of token ids in `id_lists`, as score_many scores texts;
        ArgumentError naming "ids" for a sequence that is not token ids or has fewer than 2."""
        stride = check_stride(stride, self.config.n_positions)
        return self._score_packed(id_lists, stride, "ids")

    def _score_packed(self, id_lists, stride, argument):
        ids = [ids_to_score(one, self.config.vocab_size, argument) for one in id_lists]
        scores = score_packed(self._window_logprobs, self._packed_logprobs, ids,
                              self.config.n_positions, stride)
        return [replace(score, scored_bytes=scored_bytes(self.tokenizer, one))
                for score, one in zip(scores, ids)]

    def _stream(self, ids, argument, max_new_tokens, *, stop=(), **options) -> TextStream:
        generation = Generation(self.next_token_logits, ids, n_positions=self.config.n_positions,
                                eos_id=self.tokenizer.eos_id, max_new_tokens=max_new_tokens,
                                **options)
        self.check_ids(generation.prompt_ids, argument)  # refused now, not at the first forward
        return TextStream(generation, self.tokenizer, stop)
