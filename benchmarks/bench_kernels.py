"""The projection and linear kernels against OpenBLAS sgemm (through numpy), attention against
the same math in numpy, and the other kernels' share of a 124M-shaped forward at 1024 tokens.
Same shapes, same threads, one run.

Run it on a quiet machine: with 2 cores, any other busy process distorts both columns.
"""

import argparse
import os
import time


def main(argv=None):
    """Print the linear, head and attention tables and the forward's shares."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    # OpenBLAS reads this once, when numpy loads it: so numpy and everything that imports it
    # are imported only from here on.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numba

    numba.set_num_threads(args.threads)
    linear_table(args.threads, args.repeats)
    head_table(args.repeats)
    attention_table(args.repeats)
    share_table(args.repeats)


def median_seconds(function, repeats):
    from gpt2numba.bench_workload import time_calls

    return time_calls(function, repeats).median


def quiet():
    time.sleep(0.3)   # let the other library's worker threads stop spinning


def linear_table(threads, repeats):
    import numpy as np

    from gpt2numba import numpy_checks
    from gpt2numba.kernels import linear, projection

    rng = np.random.default_rng(0)
    print(f"x [n, in] @ W [in, out] + b, float32, {threads} threads (GFLOP/s, median of "
          f"{repeats}): projection (W packed, as the model's projections) and linear (W [out, in])")
    print(f"{'n':>5} {'in':>5} {'out':>6} {'OpenBLAS':>9} {'projection':>11} {'ratio':>6} "
          f"{'linear':>8} {'ratio':>6}")
    shapes = [(n, i, o) for n in (1, 16, 128, 512, 1024)
              for i, o in ((768, 2304), (768, 768), (768, 3072), (3072, 768))] + [(1, 768, 50257)]
    for n, d_in, d_out in shapes:
        x = rng.standard_normal((n, d_in), dtype=np.float32)
        w = rng.standard_normal((d_in, d_out), dtype=np.float32)
        b = rng.standard_normal(d_out, dtype=np.float32)
        w_packed, _ = numpy_checks.pack_checked(w)
        w_out_in = np.ascontiguousarray(w.T)
        flops = 2 * n * d_in * d_out
        blas = flops / median_seconds(lambda: x @ w + b, repeats) / 1e9
        quiet()
        packed = flops / median_seconds(lambda: projection(x, w_packed, b), repeats) / 1e9
        quiet()
        dots = flops / median_seconds(lambda: linear(x, w_out_in, b), repeats) / 1e9
        quiet()
        print(f"{n:>5} {d_in:>5} {d_out:>6} {blas:>9.1f} {packed:>11.1f} {packed / blas:>6.2f} "
              f"{dots:>8.1f} {dots / blas:>6.2f}")


def head_table(repeats, rounds=3):
    """The head of one token (x [1, 768] @ wte.T, wte [50257, 768]) with wte memory-mapped from
    a file, as the model keeps it (4 KiB pages), against wte in memory that NumPy allocated
    (huge pages where Linux gives them), which the model does not do (docs/performance.md says
    why): batches alternating."""
    import tempfile

    import numpy as np

    from gpt2numba.kernels import linear
    from gpt2numba.kernels.linear import NO_BIAS

    rng = np.random.default_rng(0)
    wte = rng.standard_normal((50257, 768), dtype=np.float32)
    x = rng.standard_normal((1, 768), dtype=np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        wte.tofile(f"{scratch}/wte")
        wte.flags.writeable = False   # the model's parameters are read-only, both ways
        mapped = np.memmap(f"{scratch}/wte", np.float32, "r", shape=wte.shape).view(np.ndarray)
        times = {"in memory": [], "mapped": []}
        for _ in range(rounds):
            for where, w in (("in memory", wte), ("mapped", mapped)):
                times[where].append(median_seconds(lambda: linear(x, w, NO_BIAS), repeats))
                quiet()
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
        huge_pages = setting.read().strip()
    memory, mapped = (float(np.median(t)) for t in times.values())
    print(f"\nthe head of one token, wte [50257, 768] (transparent huge pages: {huge_pages})")
    print(f"  wte memory-mapped (the model's) {mapped * 1e3:6.2f} ms   in NumPy's memory "
          f"{memory * 1e3:6.2f} ms   ratio {mapped / memory:.2f}")


def numpy_attention(qkv, n_head):
    """causal_self_attention's math in numpy, as one would write it: every head at once, the
    whole n x n scores through OpenBLAS's batched sgemm, then masked; exp is numpy's own."""
    import numpy as np

    n, d = qkv.shape[0], qkv.shape[1] // 3
    q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(n, n_head, -1).transpose(1, 0, 2)
               for i in range(3))
    scores = q @ k.transpose(0, 2, 1) * np.float32(1 / np.sqrt(d // n_head))
    scores[:, np.triu(np.ones((n, n), dtype=bool), 1)] = -np.inf
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    scores /= scores.sum(axis=-1, keepdims=True)
    return (scores @ v).transpose(1, 0, 2).reshape(n, d)


def attention_table(repeats):
    """causal_self_attention (heads in parallel, the causal half only) against numpy_attention
    (every score), 124M's 12 heads of 64; the kernel's GFLOP/s counted over the causal half."""
    import numpy as np

    from gpt2numba.kernels import causal_self_attention

    print("\ncausal_self_attention against numpy (12 heads of 64), ms")
    print(f"  {'n':>5} {'numpy':>9} {'kernel':>9} {'ratio':>6} {'kernel GFLOP/s':>15}")
    rng = np.random.default_rng(0)
    for n in (128, 512, 1024):
        qkv = rng.standard_normal((n, 3 * 768), dtype=np.float32)
        theirs = median_seconds(lambda: numpy_attention(qkv, 12), repeats)
        quiet()
        ours = median_seconds(lambda: causal_self_attention(qkv, np.arange(n), 12, 0), repeats)
        flops = 2 * 2 * n * (n + 1) / 2 * 768          # q k^T and p v, causal half
        print(f"  {n:5d} {theirs * 1e3:9.2f} {ours * 1e3:9.2f} {theirs / ours:6.2f} "
              f"{flops / ours / 1e9:15.1f}")


def random_params(rng, config):
    """A GPT-2 of config's sizes with random weights, built through the loader's table and
    params_from_tensors like a checkpoint: speed does not depend on the values."""
    import numpy as np

    from gpt2numba.params import params_from_tensors
    from gpt2numba.weights import tensor_shapes

    tensors = {name: rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
               for name, shape in tensor_shapes(config).items()}
    return params_from_tensors(tensors, config, ".")


def share_table(repeats, n=1024):
    import numpy as np

    from gpt2numba.blocks import gpt2
    from gpt2numba.config import GPT2Config
    from gpt2numba.kernels import causal_self_attention, embedding, gelu, layernorm, residual

    config = GPT2Config()
    n_layer, d, n_head = config.n_layer, config.n_embd, config.n_head
    eps = config.layer_norm_epsilon
    rng = np.random.default_rng(0)
    params = random_params(rng, config)
    ids = rng.integers(0, config.vocab_size, size=n)
    positions = np.arange(n)
    forward = median_seconds(lambda: gpt2(ids, positions, params, n_head, eps, head_from=n - 1),
                             5)
    x = rng.standard_normal((n, d), dtype=np.float32)
    hidden = rng.standard_normal((n, 4 * d), dtype=np.float32)
    qkv = rng.standard_normal((n, 3 * d), dtype=np.float32)
    g, b = params.ln_f.weight, params.ln_f.bias
    # kernel: (seconds per call on all n rows, such calls per forward). The last block runs on
    # the last row only after its c_attn (blocks.gpt2), like ln_f; those calls are left out.
    parts = {
        "causal_self_attention (incl. its q k^T and p v)":
            (median_seconds(lambda: causal_self_attention(qkv, positions, n_head, 0), 5),
             n_layer - 1),
        "gelu": (median_seconds(lambda: gelu(hidden), repeats), n_layer - 1),
        "layernorm": (median_seconds(lambda: layernorm(x, g, b, eps), repeats), 2 * n_layer - 1),
        "residual": (median_seconds(lambda: residual(x, x), repeats), 2 * n_layer - 2),
        "embedding": (median_seconds(lambda: embedding(params.wte.weight, params.wpe.weight, ids,
                                                         positions), repeats), 1),
    }
    print(f"\nforward of a 124M-shaped GPT-2 at n = {n}, last-row head: {forward * 1e3:.0f} ms")
    for name, (seconds, calls) in parts.items():
        print(f"  {name:50} {seconds * calls * 1e3:7.1f} ms  "
              f"{100 * seconds * calls / forward:5.1f} %")
    non_linear = sum(s * c for k, (s, c) in parts.items()
                     if k in ("gelu", "layernorm", "residual", "embedding"))
    print(f"  {'gelu + layernorm + residual + embedding':50} {non_linear * 1e3:7.1f} ms  "
          f"{100 * non_linear / forward:5.1f} %")


if __name__ == "__main__":
    main()
