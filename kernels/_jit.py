"""The one place that decides how kernels are compiled, and where their machine code is kept.

Every kernel is float32 in, float32 out, over C-contiguous arrays. The policy:
- `parallel=True` on the public kernels: their outer loop is a `prange`; and `nogil=True`, so
  that Python threads go on while a kernel runs (the load reads the tokenizer meanwhile);
- fastmath with an explicit flag set that leaves out `nnan` and `ninf`, so that -inf and NaN
  keep their IEEE meaning (the causal mask and max-subtracted softmax rely on it) while
  reductions may still be reassociated and vectorised;
- `error_model="numpy"`: division by zero gives inf instead of raising, so division does not
  carry a branch that blocks vectorisation;
- LLVM's -O1 pipeline instead of Numba's default -O3: Numba runs its loop vectoriser at every
  level, and for these kernels -O3's further passes cost compile time, which a machine's first
  run waits for, without making them faster (`python benchmarks/opt_level.py` compiles every
  kernel both ways and times them side by side). A NUMBA_OPT set by the user is obeyed instead;
- an on-disk cache, so that a second process loads the machine code instead of compiling
  again. It is Numba's own (`cache=True`) with three differences, because a cache must never
  stop the program:
  * a damaged entry (a truncated or empty .nbi/.nbc, which Numba cannot unpickle) is
    compiled again and rewritten, with one log line saying so;
  * with no writable folder (read-only site-packages, no writable home, no NUMBA_CACHE_DIR),
    kernels are compiled in memory, with one log line saying how to give them a cache;
  * a NUMBA_CACHE_DIR that exists but is read-only (a cache baked into an image) is read as it
    is; Numba would skip it and compile everything again into the source tree;
  * a NUMBA_CACHE_DIR that can be neither written nor read, which Numba passes over in silence,
    is named in one log line with the folder used instead (or none).
Each log line is said once per process, also when the compiling processes say it too
(`cache.say_once`).

The vector width is chosen here too, before anything compiles: see `use_full_width_vectors`.
The threading layer (tbb, and why) is chosen here too, when the kernels are imported, before
any of them runs: see threads.py.

Numba types Python float literals as float64, so kernels use the float32 constants of their
module (`np.float32(...)`) to keep arithmetic in float32.
"""

import functools
import inspect
import os

from numba import config, njit
from numba.core.caching import CompileResultCacheImpl, FunctionCache, UserProvidedCacheLocator
from numba.core.codegen import get_host_cpu_features
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target

from .cache import say_once
from .threads import start_threads_from_main_thread, use_tbb

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
OPT_LEVEL = 1


def use_full_width_vectors():
    """Let LLVM vectorise with the CPU's widest registers, 512 bits on AVX-512 CPUs.

    LLVM's tuning for Intel's AVX-512 CPUs (Skylake-X to Emerald Rapids) prefers 256-bit vectors,
    against the clock drop that 512-bit instructions once cost code doing little vector work;
    AMD's Zen 4 has no such preference. Every kernel here is vector work, and on those Intel CPUs
    its loops would run at half the registers' width (`benchmarks/bench_kernels.py` shows the
    difference). So the preference is turned off (the `-prefer-256-bit` feature) for the code
    generator Numba creates once per process, on its first compile, which must be later than
    this. It applies to other Numba code in the process too. Left as it is when Numba has
    compiled already, or when NUMBA_CPU_NAME or NUMBA_CPU_FEATURES choose the target.
    """
    features = get_host_cpu_features()
    if (config.CPU_NAME is not None or config.CPU_FEATURES is not None
            or "+avx512f" not in features
            or "_toplevel_target_context" in vars(cpu_target)):  # the code generator exists
        return
    with global_compiler_lock:
        config.CPU_FEATURES = features + ",-prefer-256-bit"
        try:
            cpu_target.target_context.codegen()   # made now, with those features
        finally:
            config.CPU_FEATURES = None


use_full_width_vectors()
use_tbb()
start_threads_from_main_thread()


class _ReadOnlyCacheDirLocator(UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR when it exists but cannot be written: loaded from, never written to."""

    def ensure_cache_path(self):
        if not os.access(self.get_cache_path(), os.R_OK | os.X_OK):
            raise OSError(f"{self.get_cache_path()} is not a readable folder")


class _CacheImpl(CompileResultCacheImpl):
    # Numba's order (NUMBA_CACHE_DIR, beside the source, the user-wide folder, ...), with a
    # read-only NUMBA_CACHE_DIR accepted before the source tree is written instead.
    _locator_classes = [UserProvidedCacheLocator, _ReadOnlyCacheDirLocator,
                        *[cls for cls in CompileResultCacheImpl._locator_classes
                          if cls is not UserProvidedCacheLocator]]


class _KernelCache(FunctionCache):
    """Numba's per-function disk cache, made unable to stop the program (see the module doc)."""

    _impl_class = _CacheImpl

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:  # UnpicklingError, EOFError, ...: whatever a damaged file gives
            say_once("gpt2numba: the JIT cache in %s has damaged entries (%s); compiling "
                     "them again", self.cache_path, type(error).__name__)
            self._remove_entries()
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as error:  # read-only folder, disk full, a damaged index left behind
            # strerror leaves out the file's temporary name, so that every process says the same
            say_once("gpt2numba: cannot write the JIT cache in %s (%s); kernels compiled now "
                     "are kept in memory only", self.cache_path,
                     getattr(error, "strerror", None) or error)

    def _remove_entries(self):
        """Delete this function's index and data files, so they are written anew (best effort)."""
        prefix = os.path.basename(self._cache_file._index_path)[:-len(".nbi")]
        try:
            names = os.listdir(self.cache_path)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix + ".") and name.endswith((".nbi", ".nbc")):
                try:
                    os.unlink(os.path.join(self.cache_path, name))
                except OSError:
                    pass


def _at_opt_level(compile):
    """A dispatcher's compile(signature), run with LLVM at OPT_LEVEL unless NUMBA_OPT is set.

    Numba reads its optimisation level from its global config while it compiles; the global
    compiler lock keeps any other compile (in another thread) from seeing the change, and the
    level is restored afterwards, so other Numba code in the process compiles as it would
    without gpt2numba. Helpers compiled on the way, as a kernel is typed, share its level.
    """
    @functools.wraps(compile)
    def compile_at_opt_level(signature):
        with global_compiler_lock:
            config.reload_config()  # Numba re-reads NUMBA_* variables; do it before, not during
            if "NUMBA_OPT" in os.environ:
                return compile(signature)
            numba_level, config.OPT = config.OPT, config._OptLevel(OPT_LEVEL)
            try:
                return compile(signature)
            finally:
                config.OPT = numba_level
    return compile_at_opt_level


def _compile(function, **options):
    """njit(function, **options) at OPT_LEVEL with a _KernelCache, or with none where no folder
    can hold it."""
    dispatcher = njit(**options)(function)
    if config.DISABLE_JIT:
        return dispatcher
    dispatcher.compile = _at_opt_level(dispatcher.compile)
    try:
        dispatcher._cache = _KernelCache(function)  # what Dispatcher.enable_caching sets
    except RuntimeError:  # Numba: "cannot cache function ...: no locator available"
        _say_no_cache_folder(function)
        return dispatcher
    if config.CACHE_DIR and not isinstance(dispatcher._cache._impl.locator,
                                           UserProvidedCacheLocator):
        say_once("gpt2numba: NUMBA_CACHE_DIR=%s cannot hold the JIT cache (%s), so it is kept "
                 "in %s instead", config.CACHE_DIR, _cache_dir_error(function),
                 dispatcher._cache.cache_path)
    return dispatcher


def _say_no_cache_folder(function):
    if config.CACHE_DIR:
        say_once("gpt2numba: NUMBA_CACHE_DIR=%s cannot hold the JIT cache (%s), nor can any "
                 "other folder (beside the package, in the user cache folder), so every run "
                 "compiles the kernels; set NUMBA_CACHE_DIR to a writable folder to keep them",
                 config.CACHE_DIR, _cache_dir_error(function))
    else:
        say_once("gpt2numba: no writable folder for the JIT cache (beside the package, in the "
                 "user cache folder, or NUMBA_CACHE_DIR), so every run compiles the kernels; set "
                 "NUMBA_CACHE_DIR to a writable folder to keep them")


def _cache_dir_error(function) -> str:
    """Why Numba passed over NUMBA_CACHE_DIR for `function`: the error of its own test (create
    the folder, then a file in it), repeated."""
    try:
        UserProvidedCacheLocator(function, inspect.getfile(function)).ensure_cache_path()
    except OSError as error:
        return error.strerror or str(error)
    return "not writable when Numba tried it"


def kernel(function):
    """Compile a public kernel: parallel, cached, float32-safe fastmath."""
    return _compile(function, parallel=True, nogil=True, fastmath=FASTMATH, error_model="numpy")


def helper(function):
    """Compile a serial building block that kernels call from inside their parallel loops."""
    return _compile(function, fastmath=FASTMATH, error_model="numpy")


def ordered_helper(function):
    """Compile a helper whose float operations must run in the order written (no `reassoc`).

    For code such as exp32's `p * 2^(k-1) * 2`, where regrouping the factors as
    `p * (2^(k-1) * 2)` overflows to inf.
    """
    return _compile(function, fastmath=FASTMATH - {"reassoc"}, error_model="numpy")
