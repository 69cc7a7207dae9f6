"""The kernels compiled at LLVM -O1 (gpt2numba's choice, kernels/_jit.py) against Numba's default
-O3: the compile time of every kernel, and the speed of a 124M-shaped forward, in one process.

The kernels package is copied twice into a temporary folder, so that one process holds both
builds, each with its own empty JIT cache; the forwards of the two alternate call by call, so
that the machine's drift falls on both alike. The weights are random (speed does not depend on
their values), and both builds must give the same logits.

Run it on a quiet machine: with 2 cores, any other busy process distorts both columns.
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

LEVELS = (3, 1)
LENGTHS = (16, 128, 1024)


def main(argv=None):
    """Print the compile CPU time and the forward's speed of both builds, and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=11,
                        help="forwards of each build per length (1024 tokens: a third as many)")
    args = parser.parse_args(argv)
    if "NUMBA_OPT" in os.environ:
        sys.exit("opt_level.py: unset NUMBA_OPT, which gpt2numba obeys: both builds would use it")
    import numba

    numba.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        builds = {level: kernels_copy(Path(scratch), level) for level in LEVELS}
        warm_up_numba()
        compile_seconds = {level: compile_all(builds[level]) for level in LEVELS}
        print(f"numba {numba.__version__}, {args.threads} threads; -O3 is Numba's default, "
              f"-O1 gpt2numba's")
        print(f"{'':34}{'-O3':>10}{'-O1':>10}{'O1 / O3':>9}")
        print(f"{'compile every kernel, CPU s':34}{compile_seconds[3]:>10.2f}"
              f"{compile_seconds[1]:>10.2f}{compile_seconds[1] / compile_seconds[3]:>9.2f}")
        config, params = random_model()
        for n in LENGTHS:
            repeats = args.repeats if n < 1024 else max(3, args.repeats // 3)
            ms, logits = alternating_forwards(builds, config, params, n, repeats)
            differ = abs(logits[3] - logits[1]).max()
            print(f"{f'forward, {n} tokens, median ms':34}{ms[3]:>10.2f}{ms[1]:>10.2f}"
                  f"{ms[1] / ms[3]:>9.2f}   logits differ by {differ:.1e}")


def kernels_copy(scratch, level):
    """A copy of gpt2numba.kernels, imported as its own package, compiling at -O`level`."""
    import gpt2numba.kernels

    name = f"kernels_o{level}"
    shutil.copytree(Path(gpt2numba.kernels.__file__).parent, scratch / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(scratch))
    package = importlib.import_module(name)
    importlib.import_module(f"{name}._jit").OPT_LEVEL = level
    return package


def warm_up_numba():
    """Compile one small parallel function, so that Numba's one-time start-up (LLVM, its type
    registries) is not charged to the build compiled first."""
    import numpy as np
    from numba import njit, prange

    @njit(parallel=True)
    def total(x):
        s = 0.0
        for i in prange(x.shape[0]):
            s += x[i]
        return s

    total(np.ones(3))


def compile_all(package):
    """CPU seconds to compile every kernel of `package` with the model's signatures."""
    from gpt2numba.compiling import SIGNATURES

    start = time.process_time()
    for kernel, signature in SIGNATURES:
        getattr(package, kernel.__name__).compile(signature)
    return time.process_time() - start


def random_model():
    """GPT-2 124M's config, and random read-only float32 parameters of its shapes (weights.layout's
    table) as blocks.gpt2 reads them: records named like the checkpoint, projections [out, in]."""
    import numpy as np

    from gpt2numba import GPT2Config
    from gpt2numba.weights.layout import is_conv1d_weight, records, tensor_shapes

    config, rng, tensors = GPT2Config(), np.random.default_rng(0), {}
    for name, shape in tensor_shapes(config).items():
        if is_conv1d_weight(name):
            shape = shape[::-1]   # stored [in, out]: the kernels read [out, in]
        layer_norm_gain = name.endswith(".weight") and name.rsplit(".", 2)[-2].startswith("ln_")
        mean = 1.0 if layer_norm_gain else 0.0
        tensors[name] = (mean + 0.02 * rng.standard_normal(shape)).astype(np.float32)
        tensors[name].flags.writeable = False
    return config, records(tensors)


def forward(k, config, params, ids):
    """Last-row logits of GPT-2 with kernels package k: blocks.py's layer graph, with every block
    on every position."""
    import numpy as np

    from gpt2numba.kernels.linear import NO_BIAS

    def norm(x, p):
        return k.layernorm(x, p.weight, p.bias, config.layer_norm_epsilon)

    def linear(x, p):
        return k.linear(x, p.weight, p.bias)

    positions = np.arange(ids.size)
    h = k.embedding(params.wte.weight, params.wpe.weight, ids, positions)
    for p in params.h:
        a = k.causal_self_attention(linear(norm(h, p.ln_1), p.attn.c_attn), positions,
                                    config.n_head, 0)
        h = k.residual(h, linear(a, p.attn.c_proj))
        a = k.gelu(linear(norm(h, p.ln_2), p.mlp.c_fc))
        h = k.residual(h, linear(a, p.mlp.c_proj))
    return k.linear(norm(h[-1:], params.ln_f), params.wte.weight, NO_BIAS)


def alternating_forwards(builds, config, params, n, repeats):
    """Median milliseconds of a forward of n tokens per build, calls alternating, and logits."""
    import numpy as np

    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    logits = {level: forward(k, config, params, ids) for level, k in builds.items()}   # warm
    times = {level: [] for level in builds}
    for r in range(repeats):
        for level in (LEVELS if r % 2 else LEVELS[::-1]):
            start = time.perf_counter()
            forward(builds[level], config, params, ids)
            times[level].append(time.perf_counter() - start)
    return {level: 1e3 * float(np.median(t)) for level, t in times.items()}, logits


if __name__ == "__main__":
    main()
