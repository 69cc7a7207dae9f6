"""config.json of a GPT-2 checkpoint: read, map to the six numbers the model needs, validate."""

import json
import math
from pathlib import Path

from .errors import WeightsError

# transformers' GPT2Config defaults, used when a key is absent from config.json.
DEFAULTS = {
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "n_positions": 1024,
    "vocab_size": 50257,
    "layer_norm_epsilon": 1e-5,
}
INT_KEYS = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")

# Settings GPT2Config accepts that would make the model compute something other than GPT-2:
# key -> (the value GPT-2 uses, which is also GPT2Config's default; why it matters).
_MATH_SETTINGS = {
    "scale_attn_weights": (True, "attention scores are divided by sqrt(head_dim)"),
    "scale_attn_by_inverse_layer_idx": (False, "no extra 1/(layer+1) scaling of attention scores"),
    "reorder_and_upcast_attn": (False, "attention is computed in the original order"),
    "add_cross_attention": (False, "there is no cross-attention"),
    "tie_word_embeddings": (True, "the LM head is the token embedding wte"),
}


def read_config(folder) -> dict:
    """Read ``folder/config.json`` and return the GPT-2 hyper-parameters gpt2numba needs.

    Returns a dict with exactly the keys n_layer, n_head, n_embd, n_positions, vocab_size
    (ints) and layer_norm_epsilon (float). Keys absent from the file take GPT2Config's
    defaults (e.g. layer_norm_epsilon 1e-5).

    Raises WeightsError, naming the file, when: the file is missing or not valid JSON;
    model_type is present and not "gpt2"; activation_function is not "gelu_new" (GPT-2's tanh
    GELU); a size is not a positive int or the epsilon not a positive number; n_embd is not
    divisible by n_head; n_inner is set to anything but 4 * n_embd; or a setting that changes
    the math differs from GPT-2's (scale_attn_weights false, scale_attn_by_inverse_layer_idx
    true, reorder_and_upcast_attn true, add_cross_attention true, tie_word_embeddings false).
    """
    path = Path(folder) / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise WeightsError(f"{path} does not exist; a GPT-2 checkpoint folder needs its "
                           f"config.json") from error
    except (OSError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path} cannot be read ({error}); check the file") from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise WeightsError(f"{path} is not valid JSON ({error}); restore the file, e.g. by "
                           f"downloading the checkpoint again") from error
    if not isinstance(raw, dict):
        raise WeightsError(f"{path} holds a JSON {type(raw).__name__}, not an object; "
                           f"it is not a model config")
    return _validate(raw, path)


def _validate(raw: dict, path: Path) -> dict:
    model_type = raw.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise WeightsError(f"{path}: model_type is {model_type!r}; gpt2numba runs GPT-2 "
                           f"checkpoints (model_type 'gpt2') only")
    activation = raw.get("activation_function", "gelu_new")
    if activation != "gelu_new":
        raise WeightsError(f"{path}: activation_function is {activation!r}; gpt2numba implements "
                           f"GPT-2's tanh GELU (gelu_new) only")

    config = {}
    for key in INT_KEYS:
        value = raw.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise WeightsError(f"{path}: {key} is {value!r}; it must be a positive integer")
        config[key] = value
    eps = raw.get("layer_norm_epsilon", DEFAULTS["layer_norm_epsilon"])
    if (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps)
            or eps <= 0):
        raise WeightsError(f"{path}: layer_norm_epsilon is {eps!r}; it must be a positive number")
    config["layer_norm_epsilon"] = float(eps)

    if config["n_embd"] % config["n_head"]:
        raise WeightsError(f"{path}: n_embd {config['n_embd']} is not divisible by n_head "
                           f"{config['n_head']}; the config is inconsistent")
    n_inner = raw.get("n_inner")
    if n_inner is not None and n_inner != 4 * config["n_embd"]:
        raise WeightsError(f"{path}: n_inner is {n_inner!r}; gpt2numba implements GPT-2's MLP "
                           f"width 4 * n_embd = {4 * config['n_embd']} only")
    for key, (gpt2_value, meaning) in _MATH_SETTINGS.items():
        value = raw.get(key, gpt2_value)
        if value != gpt2_value:
            raise WeightsError(f"{path}: {key} is {value!r}; gpt2numba implements GPT-2 as "
                               f"released, where {key} is {gpt2_value} ({meaning})")
    return config
