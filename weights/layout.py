"""GPT-2's tensors, written once: every name, its shape, and which weights are Conv1D.

A checkpoint names each tensor by its path in the model: "h.3.attn.c_attn.weight" is block 3's
attention input projection (q, k and v side by side). These names are the canonical ones
(HF's, without the "transformer." prefix); the loader checks a file against `tensor_shapes`, and
`records` turns the same names into the attributes the model reads: params.h[3].attn.c_attn.weight.

OpenAI's checkpoints store the four projections as Conv1D modules, whose weight is [in, out]
(y = x @ weight + bias); nn.Linear's would be [out, in]. `CONV1D_WEIGHTS` names them, so a
model knows which weights to lay out for its kernels.
"""

import re
from types import SimpleNamespace

# The projections whose weight is stored [in, out], by their name inside a block.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight",
                  "mlp.c_fc.weight", "mlp.c_proj.weight")
# The LM head's name. GPT-2 ties the head to wte (config.json's tie_word_embeddings false is
# refused), so a file may leave it out, and the loader accepts it only with wte's bytes.
LM_HEAD = "lm_head.weight"
# Tensors a GPT-2 file may carry that are not weights: the causal-mask buffers of older files
# and the tied LM head.
_NOT_WEIGHTS = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)|" + re.escape(LM_HEAD))
_IN_BLOCK = re.compile(r"h\.(\d+)\.(.+)")


def tensor_shapes(config) -> dict:
    """Canonical tensor name -> shape tuple, in model order.

    ``config`` is any object with the ints n_layer, n_embd, n_positions and vocab_size (such as
    gpt2numba's GPT2Config). Shapes are as stored: Conv1D weights [in, out].
    """
    e, v, p = config.n_embd, config.vocab_size, config.n_positions
    block = {
        "ln_1.weight": (e,), "ln_1.bias": (e,),
        "attn.c_attn.weight": (e, 3 * e), "attn.c_attn.bias": (3 * e,),   # q | k | v
        "attn.c_proj.weight": (e, e), "attn.c_proj.bias": (e,),
        "ln_2.weight": (e,), "ln_2.bias": (e,),
        "mlp.c_fc.weight": (e, 4 * e), "mlp.c_fc.bias": (4 * e,),
        "mlp.c_proj.weight": (4 * e, e), "mlp.c_proj.bias": (e,),
    }
    shapes = {"wte.weight": (v, e), "wpe.weight": (p, e)}   # wte is also the (tied) LM head
    for i in range(config.n_layer):
        shapes.update({f"h.{i}.{name}": shape for name, shape in block.items()})
    shapes.update({"ln_f.weight": (e,), "ln_f.bias": (e,)})
    return shapes


def canonical_name(stored: str) -> str:
    """A name as stored in a file -> canonical: transformers' files prefix "transformer."."""
    return stored.removeprefix("transformer.")


def is_conv1d_weight(name: str) -> bool:
    """True for a canonical name whose tensor is a Conv1D weight, stored [in, out]."""
    in_block = _IN_BLOCK.fullmatch(name)
    return bool(in_block) and in_block.group(2) in CONV1D_WEIGHTS


def is_not_a_weight(name: str) -> bool:
    """True for a canonical name a GPT-2 file may hold that is no weight (mask buffer, LM head)."""
    return bool(_NOT_WEIGHTS.fullmatch(name))


def block_index(name: str) -> int | None:
    """The block number i of a canonical name "h.{i}. ...", or None outside the blocks."""
    in_block = _IN_BLOCK.fullmatch(name)
    return int(in_block.group(1)) if in_block else None


def records(tensors: dict) -> SimpleNamespace:
    """Canonical name -> value, as nested records named like the checkpoint.

    ``records({"h.0.ln_1.weight": a, "wte.weight": b, ...})`` gives ``r`` with
    ``r.h[0].ln_1.weight is a`` and ``r.wte.weight is b``: dotted names become attributes, and
    the numbered blocks under "h" a list in layer order.
    """
    tree = {}
    for name, value in tensors.items():
        *path, leaf = name.split(".")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return _as_records(tree)


def _as_records(node):
    if not isinstance(node, dict):
        return node
    if all(key.isdigit() for key in node):
        return [_as_records(node[str(i)]) for i in range(len(node))]
    return SimpleNamespace(**{key: _as_records(value) for key, value in node.items()})
