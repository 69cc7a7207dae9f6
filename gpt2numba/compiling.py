"""Compiling the kernels ahead: `gpt2numba.compile()`, and the notice of a first forward that
compiles them itself.

Numba compiles a kernel the first time it is called with new argument types, and keeps the
machine code in its disk cache (kernels/_jit.py), so only a machine's first run pays the 10-15 s.
`compile` pays it at a moment the caller chooses, kernel by kernel so that progress can be
shown, with the exact types the model passes: a kernel compiled for other types (a writable
weight where the model's are read-only) would be compiled again at the first forward.
"""

import logging

from numba import types

from gpt2numba.blocks import FORWARD_KERNELS
from gpt2numba.kernels import (
    causal_self_attention,
    embedding,
    first_nonfinite,
    gelu,
    layernorm,
    linear,
    log_softmax_at,
    residual,
    transpose_checked,
)
from gpt2numba.kernels._cache import all_cached

# What a cold compile of every kernel took on a 2-core x86-64 machine (12-15 s); only used to
# tell the user roughly how long the pause is.
COMPILE_ESTIMATE_SECONDS = 15

_WEIGHT = types.Array(types.float32, 2, "C", readonly=True)   # every parameter is read-only
_VECTOR = types.Array(types.float32, 1, "C", readonly=True)   # biases, gains, NO_BIAS
_ACTIVATION = types.Array(types.float32, 2, "C")              # what one kernel hands the next
_IDS = types.Array(types.int64, 1, "C")                       # GPT2.check_ids' int64 copy

# Every kernel the model calls, in the order a run first calls it (the load's finiteness scan,
# the forward, scoring), with the one signature the model calls it with.
SIGNATURES = (
    (transpose_checked, (_WEIGHT,)),                             # each Conv1D weight
    (first_nonfinite, (_VECTOR,)),                               # the others, flattened
    (embedding, (_WEIGHT, _WEIGHT, _IDS)),                       # wte, wpe, ids
    (layernorm, (_ACTIVATION, _VECTOR, _VECTOR, types.float64)),  # x, gain, bias, eps
    (linear, (_ACTIVATION, _WEIGHT, _VECTOR)),                   # x, w [out, in], bias
    (causal_self_attention, (_ACTIVATION, types.int64)),         # qkv, n_head
    (residual, (_ACTIVATION, _ACTIVATION)),
    (gelu, (_ACTIVATION,)),
    (log_softmax_at, (_ACTIVATION, _IDS)),                       # logits, targets
)
KERNELS = tuple(kernel for kernel, _ in SIGNATURES)

log = logging.getLogger("gpt2numba")
_first_forward_checked = False


def compile(progress=None):  # shadows the builtin here: named like Numba's own .compile
    """Compile every kernel the model's load, forward and scoring call, or load it from Numba's
    disk cache, so that the first forward does not pause.

    Takes 10-15 s on a machine's first run and well under a second once cached. The kernels
    do not depend on the model (all GPT-2 sizes use the same types), so no model is needed.
    `progress(k, n, name)`, if given, is called before kernel k of n (1-based) is compiled.
    """
    global _first_forward_checked
    for k, (kernel, signature) in enumerate(SIGNATURES, start=1):
        if progress is not None:
            progress(k, len(SIGNATURES), kernel.__name__)
        kernel.compile(signature)
    _first_forward_checked = True


def notice_first_compile():
    """Log one INFO record on the `gpt2numba` logger when the first forward of the process is
    about to compile kernels (they are not in Numba's cache and `compile` was not called)."""
    global _first_forward_checked
    if _first_forward_checked:
        return
    _first_forward_checked = True
    if not all_cached(FORWARD_KERNELS):
        log.info("compiling the kernels for the first forward (about %d s, once per machine: "
                 "Numba caches them; gpt2numba.compile() does it ahead)", COMPILE_ESTIMATE_SECONDS)
