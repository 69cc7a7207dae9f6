"""Compiling the kernels ahead: `gpt2numba.compile()`, and the notice of a first forward that
compiles them itself.

Numba compiles a kernel the first time it is called with new argument types, and keeps the
machine code in its disk cache (kernels/_jit.py), so only a machine's first run pays for it.
`compile` pays it at a moment the caller chooses, kernel by kernel so that progress can be
shown, with the exact types the model passes: a kernel compiled for other types (a writable
weight where the model's are read-only) would be compiled again at the first forward.

On a first run, `start_compiling` (called by GPT2.from_pretrained and by the command line
before anything else) hands about half of the kernels to a second process
(compiler_process.py), so that two cores compile at once, and the download and the load
overlap with the compile; `compile` and the first forward then wait for that process.
"""

import logging

from numba import types

from gpt2numba import compiler_process
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
from gpt2numba.kernels._cache import all_cached, cache_is_writable

# What a cold compile of every kernel takes on a 2-core x86-64 machine, in two processes; only
# used to tell the user roughly how long the pause is.
COMPILE_ESTIMATE_SECONDS = 10

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
# Compiled by the second process on a first run: about half of the compile time
# (`python benchmarks/compile_time.py`), leaving this process the load's own two kernels and
# its work of loading.
IN_SECOND_PROCESS = (causal_self_attention, log_softmax_at, layernorm, gelu, residual)

log = logging.getLogger("gpt2numba")
_first_forward_checked = False
_second_process = None


def start_compiling():
    """On a machine's first run (a kernel not in the disk cache, which can be written), start
    the second process compiling IN_SECOND_PROCESS, once per process; else do nothing."""
    global _second_process
    if _second_process is None and not all_cached(KERNELS) and cache_is_writable(KERNELS):
        _second_process = compiler_process.start([k.__name__ for k in IN_SECOND_PROCESS])


def compile(progress=None):  # shadows the builtin here: named like Numba's own .compile
    """Compile every kernel the model's load, forward and scoring call, or load it from Numba's
    disk cache, so that the first forward does not pause.

    Takes several seconds on a machine's first run (on two cores or more, two processes compile
    at once: see start_compiling) and well under a second once cached. The kernels do not
    depend on the model (all GPT-2 sizes use the same types), so no model is needed.
    `progress(k, n, name)`, if given, is called before kernel k of n (1-based) is compiled or
    waited for.
    """
    global _first_forward_checked, _second_process
    start_compiling()
    second, _second_process = _second_process, None
    elsewhere = {k.__name__ for k in IN_SECOND_PROCESS} if second is not None else set()
    order = ([s for s in SIGNATURES if s[0].__name__ not in elsewhere]
             + [s for s in SIGNATURES if s[0].__name__ in elsewhere])
    try:
        for k, (kernel, signature) in enumerate(order, start=1):
            if progress is not None:
                progress(k, len(order), kernel.__name__)
            if kernel.__name__ in elsewhere:
                second.wait(kernel.__name__)  # if it failed, the next line compiles it here
            kernel.compile(signature)
    finally:
        if second is not None:
            second.stop()
    _first_forward_checked = True


def before_first_forward():
    """Called before every forward; the first time only, when a kernel is not in Numba's cache,
    log one INFO record on the `gpt2numba` logger and `compile`, which finishes the second
    process's work if one was started (a forward would compile the rest on one core)."""
    global _first_forward_checked
    if _first_forward_checked:
        return
    _first_forward_checked = True
    if not all_cached(KERNELS):
        log.info("compiling the kernels for the first forward (about %d s, once per machine: "
                 "Numba caches them; gpt2numba.compile() does it ahead)", COMPILE_ESTIMATE_SECONDS)
        compile()
