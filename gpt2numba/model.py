"""GPT2: load a checkpoint, run the forward, generate text."""

import threading
from pathlib import Path

import numpy as np

from gpt2numba.blocks import Block, LayerNorm, Linear, Params, gpt2
from gpt2numba.config import GPT2Config
from gpt2numba.generate import Generation, stream_text
from gpt2numba.sampling import SamplingSettings
from gpt2numba.score import Score, check_stride, ids_to_score, score_in_windows
from gpt2numba.tokenizer import Tokenizer
from gpt2numba.weights import load_tensors, resolve

# Numba's parallel kernels may not be entered by two Python threads at once (the workqueue
# threading layer aborts; the others oversubscribe): one forward at a time per process.
_FORWARD_LOCK = threading.Lock()


def params_from_tensors(tensors, config: GPT2Config) -> Params:
    """Checkpoint tensors (canonical names, Conv1D [in, out]) -> Params with every w [out, in].

    Each projection is transposed into a new contiguous array and its memory-mapped original
    released as soon as it is copied, so the peak is one file plus the copies; wte stays
    memory-mapped (the head reads it as it is). Every parameter is read-only, like the mapped
    ones: Numba compiles one version of a kernel per argument type, and a writable and a
    read-only weight are two types (3 s more of first-run compile for `linear` alone).
    """
    def read_only(array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        array.flags.writeable = False
        return array

    def take(name):
        return read_only(tensors.pop(name))

    def linear(prefix):
        return Linear(read_only(tensors.pop(prefix + ".weight").T), take(prefix + ".bias"))

    def norm(prefix):
        return LayerNorm(take(prefix + ".weight"), take(prefix + ".bias"))

    blocks = []
    for i in range(config.n_layer):
        h = f"h.{i}."
        blocks.append(Block(ln_1=norm(h + "ln_1"), c_attn=linear(h + "attn.c_attn"),
                            attn_proj=linear(h + "attn.c_proj"), ln_2=norm(h + "ln_2"),
                            c_fc=linear(h + "mlp.c_fc"), mlp_proj=linear(h + "mlp.c_proj")))
    return Params(wte=take("wte.weight"), wpe=take("wpe.weight"), blocks=blocks, ln_f=norm("ln_f"),
                  head_bias=read_only(np.zeros(config.vocab_size, dtype=np.float32)))


class GPT2:
    """OpenAI's GPT-2 with Numba kernels. Build it with GPT2.from_pretrained."""

    def __init__(self, config: GPT2Config, params: Params, tokenizer: Tokenizer, name=""):
        self.config = config
        self.params = params
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def from_pretrained(cls, name_or_path, revision=None) -> "GPT2":
        """Load "gpt2" / "gpt2-medium" / "gpt2-large" / "gpt2-xl" / "distilgpt2", any Hub repo id
        of a GPT-2, or a local folder with config.json, model.safetensors, vocab.json, merges.txt.

        Hub files go through huggingface_hub's cache (HF_HOME, HF_HUB_OFFLINE, HF_TOKEN,
        HF_ENDPOINT honoured); `revision` pins a branch, tag or commit. Raises
        weights.WeightsError with a one-sentence explanation when anything is missing or wrong.
        """
        folder = Path(resolve(name_or_path, revision=revision))
        config = GPT2Config.from_folder(folder)
        params = params_from_tensors(load_tensors(folder, vars(config)), config)
        tokenizer = Tokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
        return cls(config, params, tokenizer, name=str(name_or_path))

    def __repr__(self):
        c = self.config
        return (f"GPT2({self.name!r}: n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, "
                f"n_positions={c.n_positions}, vocab_size={c.vocab_size})")

    def check_ids(self, ids):
        """ids as an int64 array, or ValueError naming what is wrong (empty, too long, out of range)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError("ids must be a non-empty 1-D sequence of integer token ids")
        if ids.size > self.config.n_positions:
            raise ValueError(f"the input is {ids.size} tokens; the model's context holds at most "
                             f"{self.config.n_positions} (n_positions)")
        bad = ids[(ids < 0) | (ids >= self.config.vocab_size)]
        if bad.size:
            raise ValueError(f"token id {int(bad[0])} is out of range: ids must be in "
                             f"0..{self.config.vocab_size - 1}")
        return ids.astype(np.int64)

    def logits(self, ids) -> np.ndarray:
        """ids [n] (1 <= n <= n_positions) -> float32 logits [n, vocab_size], every position."""
        ids = self.check_ids(ids)
        with _FORWARD_LOCK:
            return gpt2(ids, self.params, self.config.n_head, self.config.layer_norm_epsilon)

    def next_token_logits(self, ids) -> np.ndarray:
        """ids [n] -> float32 logits [vocab_size] of the last position only (the head on one row)."""
        ids = self.check_ids(ids)
        with _FORWARD_LOCK:
            return gpt2(ids, self.params, self.config.n_head, self.config.layer_norm_epsilon,
                        last_only=True)[0]

    def generation(self, prompt_ids, max_new_tokens=50, *, temperature=0.0, top_k=0, top_p=1.0,
                   repetition_penalty=1.0, seed=None, stop_at_eos=True, slide=False) -> Generation:
        """A Generation (an iterator of new ids that records why it stopped) for prompt_ids."""
        sampling = SamplingSettings(temperature, top_k, top_p, repetition_penalty, seed)
        return Generation(self, prompt_ids, max_new_tokens, sampling, stop_at_eos, slide)

    def generate_ids(self, ids, max_new_tokens=50, *, stop=(), **options) -> list[int]:
        """The new token ids after `ids` (not the prompt). Greedy unless temperature > 0.

        options: temperature, top_k, top_p, repetition_penalty, seed, stop_at_eos, slide
        (see `generation`). With `stop`, ids end before the token that completed a stop string.
        """
        generation = self.generation(ids, max_new_tokens, **options)
        if stop:
            for _ in stream_text(generation, self.tokenizer, _as_tuple(stop)):
                pass
            new_ids = generation.new_ids[:-1] if generation.stop_reason == "stop" else generation.new_ids
        else:
            new_ids = list(generation)
        generation.warn_if_cut()
        return list(new_ids)

    def stream(self, prompt, max_new_tokens=50, *, stop=(), **options):
        """Iterator of text pieces of the continuation of `prompt`, UTF-8 safe, as they come.

        An empty prompt conditions on <|endoftext|>, as GPT-2's unconditional samples do.
        Same options as generate_ids; the stop strings are not included in the output.
        """
        generation = self.generation(self.tokenizer.encode(prompt), max_new_tokens, **options)
        yield from stream_text(generation, self.tokenizer, _as_tuple(stop))
        generation.warn_if_cut()

    def generate(self, prompt, max_new_tokens=50, **options) -> str:
        """The continuation of `prompt` as one string (the prompt is not repeated)."""
        return "".join(self.stream(prompt, max_new_tokens, **options))

    def score_ids(self, ids, stride=None, *, progress=None) -> Score:
        """Score token ids [N] of any length: log p of tokens 1..N-1, each given the tokens before
        it in windows of n_positions that start every `stride` tokens (see gpt2numba.score).

        stride: 1..n_positions, default n_positions // 2. ValueError for a stride out of range,
        ids out of range, or fewer than 2 ids (nothing to score). progress(scored, total) is
        called after each window.
        """
        stride = check_stride(stride, self.config.n_positions)
        ids = ids_to_score(ids, self.config.vocab_size)
        return score_in_windows(self.logits, ids, self.config.n_positions, stride, progress)

    def score(self, text, stride=None, *, progress=None) -> Score:
        """Score `text` (tokenized as it is, no <|endoftext|> added): see score_ids."""
        stride = check_stride(stride, self.config.n_positions)
        return self.score_ids(self.tokenizer.encode(text), stride, progress=progress)

    def score_many(self, texts, stride=None) -> list[Score]:
        """One Score per text of `texts` (any iterable), each scored as `score` does, one window
        at a time."""
        stride = check_stride(stride, self.config.n_positions)
        return [self.score(text, stride) for text in texts]


def _as_tuple(stop):
    return (stop,) if isinstance(stop, str) else tuple(stop)
