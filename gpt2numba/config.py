"""GPT2Config: the sizes that define a GPT-2, read and validated from a checkpoint's config.json.

The weights package takes this object (or any with the same size attributes) to know which
tensors, of which shapes, a checkpoint must hold; the model takes it to know its depth, heads
and epsilon. Everything in config.json that would make the model compute something other than
GPT-2 is refused here, before any tensor is opened.
"""

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gpt2numba.weights import WeightsError
from gpt2numba.weights.json_file import FileProblem, read_json

# A config.json is about 1 KB; anything this large is not one, and is not read.
MAX_CONFIG_BYTES = 1 << 20
_NOT_JSON = ("{path} is not valid JSON ({error}); restore the file, e.g. by downloading the "
             "checkpoint again")
# What can be wrong with config.json as a JSON file, in words (json_file.FileProblem's kinds).
_JSON_PROBLEMS = {
    "too large": ("{path} is larger than {limit_mib} MiB; a GPT-2 config.json is about 1 KB, so "
                  "this is not one"),
    "not UTF-8": "{path} is not UTF-8 text ({error}); check the file",
    "too deep": "{path} nests JSON {depth} levels deep (at most {max_depth}); it is not a model "
                "config",
    "not JSON": _NOT_JSON,
    "unusable JSON": _NOT_JSON,   # an integer longer than Python converts
    "not an object": "{path} holds a JSON {type}, not an object; it is not a model config",
}
# The largest value of each size a GPT-2-shaped checkpoint can plausibly have (gpt2-xl has 48
# layers, 25 heads, 1600 wide, 1024 positions, 50257 tokens). Checked before anything is built
# per layer or per token, so a config of 10**30 layers is a message, not a machine out of memory.
MAX_SIZES = {"n_layer": 1024, "n_head": 1024, "n_embd": 65536, "n_positions": 1 << 20,
             "vocab_size": 1 << 22}
_FLOAT32_SMALLEST = float(np.nextafter(np.float32(0), np.float32(1)))   # 1.4e-45
_FLOAT32_LARGEST = float(np.finfo(np.float32).max)                       # 3.4e38

# Settings transformers' GPT2Config accepts that would change GPT-2's math:
# key -> (the value GPT-2 uses, which is also transformers' default; why it matters).
_MATH_SETTINGS = {
    "scale_attn_weights": (True, "attention scores are divided by sqrt(head_dim)"),
    "scale_attn_by_inverse_layer_idx": (False, "no extra 1/(layer+1) scaling of attention scores"),
    "reorder_and_upcast_attn": (False, "attention is computed in the original order"),
    "add_cross_attention": (False, "there is no cross-attention"),
    "tie_word_embeddings": (True, "the LM head is the token embedding wte"),
}


@dataclass(frozen=True)
class GPT2Config:
    """GPT-2's hyper-parameters; the defaults are gpt2 (124M), as in transformers' GPT2Config."""

    n_layer: int = 12                  # transformer blocks: 12 (gpt2) ... 48 (gpt2-xl)
    n_head: int = 12                   # attention heads per block; head_dim = n_embd / n_head
    n_embd: int = 768                  # width of the residual stream: 768 ... 1600
    n_positions: int = 1024            # context length: the most tokens one forward can see
    vocab_size: int = 50257            # byte-level BPE tokens, the last is <|endoftext|>
    layer_norm_epsilon: float = 1e-5   # added to the variance in every layer norm

    @classmethod
    def from_folder(cls, folder) -> "GPT2Config":
        """Read ``folder/config.json``; keys absent from the file take the defaults above.

        Raises WeightsError, naming the file, when: the file is missing or not valid JSON;
        model_type is present and not "gpt2"; activation_function is not "gelu_new" (GPT-2's
        tanh GELU); a size is not a positive int or the epsilon not a positive number; n_embd
        is not divisible by n_head; n_inner is set to anything but 4 * n_embd; or a setting that
        changes the math differs from GPT-2's (scale_attn_weights false,
        scale_attn_by_inverse_layer_idx true, reorder_and_upcast_attn true,
        add_cross_attention true, tie_word_embeddings false).
        """
        path = Path(folder) / "config.json"
        try:
            raw = read_json(path, MAX_CONFIG_BYTES)
        except FileNotFoundError as error:
            raise WeightsError(f"{path} does not exist; a GPT-2 checkpoint folder needs its "
                               f"config.json") from error
        except OSError as error:
            raise WeightsError(f"{path} cannot be read ({error}); check the file") from error
        except FileProblem as problem:
            raise WeightsError(problem.words(_JSON_PROBLEMS, path=path)) from problem.__cause__
        return cls._from_dict(raw, path)

    @classmethod
    def _from_dict(cls, raw: dict, path: Path) -> "GPT2Config":
        model_type = raw.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise WeightsError(f"{path}: model_type is {model_type!r}; gpt2numba runs GPT-2 "
                               f"checkpoints (model_type 'gpt2') only")
        activation = raw.get("activation_function", "gelu_new")
        if activation != "gelu_new":
            raise WeightsError(f"{path}: activation_function is {activation!r}; gpt2numba "
                               f"implements GPT-2's tanh GELU (gelu_new) only")

        values = {}
        for field in fields(cls):
            value = raw.get(field.name, field.default)
            if field.type is int and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 < value <= MAX_SIZES[field.name]):
                raise WeightsError(f"{path}: {field.name} is {value!r}; it must be a positive "
                                   f"integer of at most {MAX_SIZES[field.name]}")
            values[field.name] = value
        eps = values["layer_norm_epsilon"]
        # The kernels add eps in float32: 1e300 would be inf there, 1e-50 zero.
        if (isinstance(eps, bool) or not isinstance(eps, (int, float))
                or not _FLOAT32_SMALLEST <= eps <= _FLOAT32_LARGEST):
            raise WeightsError(f"{path}: layer_norm_epsilon is {eps!r}; it must be a positive "
                               f"number that float32 can hold (about 1e-45 to 3e38)")
        config = cls(**{**values, "layer_norm_epsilon": float(eps)})

        if config.n_embd % config.n_head:
            raise WeightsError(f"{path}: n_embd {config.n_embd} is not divisible by n_head "
                               f"{config.n_head}; the config is inconsistent")
        n_inner = raw.get("n_inner")
        if n_inner is not None and n_inner != 4 * config.n_embd:
            raise WeightsError(f"{path}: n_inner is {n_inner!r}; gpt2numba implements GPT-2's "
                               f"MLP width 4 * n_embd = {4 * config.n_embd} only")
        for key, (gpt2_value, meaning) in _MATH_SETTINGS.items():
            value = raw.get(key, gpt2_value)
            if value != gpt2_value:
                raise WeightsError(f"{path}: {key} is {value!r}; gpt2numba implements GPT-2 as "
                                   f"released, where {key} is {gpt2_value} ({meaning})")
        return config
