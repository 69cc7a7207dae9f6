"""Compiling the kernels ahead: `gpt2numba.compile()`, and the notice of a first forward that
compiles them itself.

Numba compiles a kernel the first time it is called with new argument types, and keeps the
machine code in its disk cache (kernels/_jit.py), so only a machine's first run pays for it.
`compile` pays it at a moment the caller chooses, kernel by kernel so that progress can be
shown, with the exact types the model passes: a kernel compiled for other types (a writable
weight where the model's are read-only) would be compiled again at the first forward.

On a first run, `start_compiling` (called as a model's load begins, runtime.loading, and by
`gpt2numba download`) hands the kernels to two processes (compiler_process.py), one per half,
so that two cores compile at once while this process downloads and loads the model. The first
token waits only for the forward's kernels, which each process compiles first: the load uses
NumPy's versions of its two kernels meanwhile (`load_checks`), and scoring waits for its kernel
when it needs it (`prepare`, which runtime.running calls before any kernel runs).
"""

import logging

from numba import types

import gpt2numba.kernels
from gpt2numba import compiler_process, numpy_checks
from gpt2numba.blocks import FORWARD_KERNELS
from gpt2numba.kernels import (
    causal_self_attention,
    cross_entropy,
    embedding,
    entropy,
    first_nonfinite,
    gelu,
    head_log_softmax_at,
    kl_divergence,
    layernorm,
    linear,
    log_mass,
    log_softmax_at,
    pack_checked,
    projection,
    residual,
    token_rank,
    top_k,
)
from gpt2numba.kernels.cache import (
    all_cached,
    cache_is_writable,
    cache_lock,
    recording_compiles,
)

# Roughly how long a first run waits for the forward's kernels on two cores (docs/performance.md
# has the measurements); only used to tell the user how long the pause is.
COMPILE_ESTIMATE_SECONDS = 8

_WEIGHT = types.Array(types.float32, 2, "C", readonly=True)   # every parameter is read-only
_VECTOR = types.Array(types.float32, 1, "C", readonly=True)   # biases, gains, NO_BIAS
_PACKED = types.Array(types.float32, 3, "C", readonly=True)   # projections (pack_checked)
_ACTIVATION = types.Array(types.float32, 2, "C")              # what one kernel hands the next
_IDS = types.Array(types.int64, 1, "C")                       # ids, positions, targets
_MEMBERS = types.Array(types.boolean, 1, "C")                 # a set of token ids, as a mask

# Every kernel the model calls, in the order a run first calls it (the load's finiteness scan,
# the forward, scoring), with the one signature the model calls it with.
SIGNATURES = (
    (first_nonfinite, (_VECTOR,)),                               # weights not packed
    (pack_checked, (_WEIGHT,)),                                  # a Conv1D weight [in, out]
    (embedding, (_WEIGHT, _WEIGHT, _IDS, _IDS)),                 # wte, wpe, ids, positions
    (layernorm, (_ACTIVATION, _VECTOR, _VECTOR, types.float64)),  # x, gain, bias, eps
    (projection, (_ACTIVATION, _PACKED, _VECTOR)),               # x, packed w, bias
    # qkv, positions, n_head, first
    (causal_self_attention, (_ACTIVATION, _IDS, types.int64, types.int64)),
    (residual, (_ACTIVATION, _ACTIVATION)),
    (gelu, (_ACTIVATION,)),
    (linear, (_ACTIVATION, _WEIGHT, _VECTOR)),                   # the head: x, wte, NO_BIAS
    (head_log_softmax_at, (_ACTIVATION, _WEIGHT, _IDS)),         # scoring: h, wte, targets
    (log_softmax_at, (_ACTIVATION, _IDS)),                       # logits, targets
    (token_rank, (_ACTIVATION, _IDS)),                           # scoring's details
    (entropy, (_ACTIVATION,)),
    (top_k, (_ACTIVATION, types.int64)),
    (log_mass, (_ACTIVATION, _MEMBERS)),                         # word surprisal
    (kl_divergence, (_ACTIVATION, _ACTIVATION)),                 # comparing two models
    (cross_entropy, (_ACTIVATION, _ACTIVATION)),
)
KERNELS = tuple(kernel for kernel, _ in SIGNATURES)
# What each of the two compiling processes of a first run compiles, in this order: the
# forward's kernels first, cut into halves of about equal compile time
# (`python benchmarks/compile_time.py`), then those the first token does not wait for.
HALVES = ((linear, embedding, layernorm, gelu, first_nonfinite, head_log_softmax_at, token_rank,
           top_k, log_mass),
          (causal_self_attention, projection, residual, pack_checked, log_softmax_at, entropy,
           kl_divergence, cross_entropy))
LOAD_KERNELS = (first_nonfinite, pack_checked)

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
    failed or there is none. A process is reaped once all it compiles is ready here."""
    signatures = dict(SIGNATURES)
    for kernel in kernels:
        compiler = _compilers.pop(kernel.__name__, None)
        if compiler is not None:
            compiler.wait(kernel.__name__)
            if compiler not in _compilers.values():
                compiler.stop()
        kernel.compile(signatures[kernel])


def load_checks():
    """What the load checks and packs the weights with: the kernels module when Numba's
    cache holds both of the load's kernels, else numpy_checks, their NumPy versions (a first
    run, or no writable cache), so that the load waits for no compile."""
    if all_cached(LOAD_KERNELS):
        ready(LOAD_KERNELS)
        return gpt2numba.kernels
    return numpy_checks


def compile(progress=None, kernels=KERNELS):  # shadows the builtin: named like Numba's .compile
    """Compile every kernel the model's load, forward and scoring call (or those of `kernels`),
    or load it from Numba's disk cache, so that the first forward does not pause.

    Takes several seconds on a machine's first run (on two cores or more, in two processes at
    once: see start_compiling) and well under a second once cached. The kernels do not depend
    on the model (all GPT-2 sizes use the same types), so no model is needed.
    `progress(k, n, name)`, if given, is called before kernel k of n (1-based) is compiled or
    waited for.
    """
    global _first_forward_checked
    start_compiling()
    order = [kernel for half in HALVES for kernel in half if kernel in kernels]
    for k, kernel in enumerate(order, start=1):
        if progress is not None:
            progress(k, len(order), kernel.__name__)
        ready([kernel])
    for compiler in _compilers.values():  # what they still compile is for the next runs
        compiler.wait_at_exit = True
    if set(FORWARD_KERNELS) <= set(kernels):
        _first_forward_checked = True


def compile_in_turn() -> int:
    """Compile every kernel here, or load it from Numba's disk cache, inside the cache's lock
    (kernels/cache.py, cache_lock), with no compiling processes: for the workers of a batch
    engine, many of which start at once on a node and share its cache, and each of which has
    only the CPUs the engine gave it. The first to take the lock compiles, the others then load.
    Returns how many compiles ran in this process (0 when the cache held every kernel)."""
    global _first_forward_checked
    with cache_lock(KERNELS), recording_compiles() as compiles:
        ready(KERNELS)
    _first_forward_checked = True
    return len(compiles)


def prepare(kernels):
    """Make `kernels` callable without a pause, before each call of them (runtime.running): on
    the process's first forward, `before_first_forward`; then wait for any of them that a
    compiling process still has (`ready`)."""
    before_first_forward()
    waiting = [kernel for kernel in kernels if kernel.__name__ in _compilers]
    if waiting:
        ready(waiting)


def before_first_forward():
    """Called before every forward (by `prepare`); the first time only, when a kernel it needs
    is not in Numba's cache, log one INFO record on the `gpt2numba` logger and compile: the
    forward's kernels when the compiling processes run (they go on with the rest) or when no
    cache can keep the rest, else (one core) every kernel, here, so that the next runs find
    them all."""
    global _first_forward_checked
    if _first_forward_checked:
        return
    _first_forward_checked = True
    forward_only = bool(_compilers) or not cache_is_writable(KERNELS)
    needed = FORWARD_KERNELS if forward_only else KERNELS
    if not all_cached(needed):
        log.info("compiling the kernels for the first forward (about %d s, once per machine: "
                 "Numba caches them; gpt2numba.compile() does it ahead)", COMPILE_ESTIMATE_SECONDS)
        compile(kernels=needed)
