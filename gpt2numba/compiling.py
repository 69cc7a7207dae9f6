"""Compiling the kernels ahead: `gpt2numba.compile()`, and the notice of a first forward that
compiles them itself.

Numba compiles a kernel the first time it is called with new argument types, and keeps the
machine code in its disk cache (kernels/_jit.py), so only a machine's first run pays for it.
`compile` pays it at a moment the caller chooses, kernel by kernel so that progress can be
shown, with the exact types the model passes: a kernel compiled for other types (a writable
weight where the model's are read-only) would be compiled again at the first forward.

On a first run, `start_compiling` (called by GPT2.from_pretrained and by the command line
before anything else) hands the kernels to two processes (compiler_process.py), one per half,
so that two cores compile at once while this process downloads and loads the model; `ready`
waits for the ones the load needs, and `compile` and the first forward for the rest.
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
    (first_nonfinite, (_VECTOR,)),                               # weights not transposed
    (transpose_checked, (_WEIGHT,)),                             # each Conv1D weight
    (embedding, (_WEIGHT, _WEIGHT, _IDS)),                       # wte, wpe, ids
    (layernorm, (_ACTIVATION, _VECTOR, _VECTOR, types.float64)),  # x, gain, bias, eps
    (linear, (_ACTIVATION, _WEIGHT, _VECTOR)),                   # x, w [out, in], bias
    (causal_self_attention, (_ACTIVATION, types.int64)),         # qkv, n_head
    (residual, (_ACTIVATION, _ACTIVATION)),
    (gelu, (_ACTIVATION,)),
    (log_softmax_at, (_ACTIVATION, _IDS)),                       # logits, targets
)
KERNELS = tuple(kernel for kernel, _ in SIGNATURES)
# What each of the two compiling processes of a first run compiles, in this order: halves of
# the compile time (`python benchmarks/compile_time.py`), the load's two kernels first.
HALVES = ((first_nonfinite, transpose_checked, embedding, linear),
          (causal_self_attention, log_softmax_at, layernorm, gelu, residual))
LOAD_KERNELS = (first_nonfinite, transpose_checked)

log = logging.getLogger("gpt2numba")
_first_forward_checked = False
_compilers = {}  # kernel name -> the CompilerProcess compiling it, on a first run


def start_compiling():
    """On a machine's first run (a kernel not in the disk cache, which can be written) with two
    cores or more, start the two processes compiling HALVES, once per process; else nothing."""
    if _compilers or all_cached(KERNELS) or not cache_is_writable(KERNELS):
        return
    for half in HALVES:
        compiler = compiler_process.start([kernel.__name__ for kernel in half])
        if compiler is None:  # one core, or no process can be started: compile here
            break
        _compilers.update((name, compiler) for name in compiler.names)


def ready(kernels):
    """Make `kernels` (of KERNELS) callable without a pause: wait for the process compiling
    each one, if any, then load it from the disk cache, or compile it here if that process
    failed or there is none."""
    signatures = dict(SIGNATURES)
    for kernel in kernels:
        compiler = _compilers.get(kernel.__name__)
        if compiler is not None:
            compiler.wait(kernel.__name__)
        kernel.compile(signatures[kernel])


def compile(progress=None):  # shadows the builtin here: named like Numba's own .compile
    """Compile every kernel the model's load, forward and scoring call, or load it from Numba's
    disk cache, so that the first forward does not pause.

    Takes several seconds on a machine's first run (on two cores or more, in two processes at
    once: see start_compiling) and well under a second once cached. The kernels do not depend
    on the model (all GPT-2 sizes use the same types), so no model is needed.
    `progress(k, n, name)`, if given, is called before kernel k of n (1-based) is compiled or
    waited for.
    """
    global _first_forward_checked
    start_compiling()
    order = [kernel for half in HALVES for kernel in half]
    try:
        for k, kernel in enumerate(order, start=1):
            if progress is not None:
                progress(k, len(order), kernel.__name__)
            ready([kernel])
    finally:
        for compiler in set(_compilers.values()):
            compiler.stop()
        _compilers.clear()
    _first_forward_checked = True


def before_first_forward():
    """Called before every forward; the first time only, when a kernel is not in Numba's cache,
    log one INFO record on the `gpt2numba` logger and `compile`, which waits for the compiling
    processes if they were started (a forward would compile the rest on one core)."""
    global _first_forward_checked
    if _first_forward_checked:
        return
    _first_forward_checked = True
    if not all_cached(KERNELS):
        log.info("compiling the kernels for the first forward (about %d s, once per machine: "
                 "Numba caches them; gpt2numba.compile() does it ahead)", COMPILE_ESTIMATE_SECONDS)
        compile()
