"""`gpt2numba bench`: import, load, JIT cold vs cached, warm forward and generation, timed.

Cold and cached starts run in fresh processes (bench_fresh.py) whose NUMBA_CACHE_DIR is a
temporary directory (empty for the first, populated by it for the second), so the user's own
cache is neither used nor touched. Warm figures are medians over repeated runs in this process.
The work itself (W1, W2) and its timing are bench_workload.py's.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numba
import numpy as np

from gpt2numba.bench_workload import (
    W1_LENGTHS,
    W2_NEW_TOKENS,
    W2_PROMPT,
    our_w1,
    our_w2,
    time_calls,
    w1_lengths,
)
from gpt2numba.child_python import python_command
from gpt2numba.kernels.threads import ThreadCount

# Other processes' load, in cores, above which the report says the machine was busy.
BUSY_CORES = 0.5
# The prefix of the lines on which a fresh process (bench_fresh.py) reports its compile progress.
PROGRESS = "progress:"


def peak_rss_bytes():
    """Peak resident set of this process since it started (exec), in bytes.

    From VmHWM in /proc/self/status on Linux. Not ru_maxrss: Linux carries it across exec, and
    subprocess starts children with vfork, so a child would report its parent's peak.
    Elsewhere, ru_maxrss (which has that caveat).
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class FreshStart:
    """One fresh process to the first token: its own timings, and the wall time seen from
    outside."""
    import_s: float
    load_s: float
    compile_s: float          # gpt2numba.compile(): compiling, or loading from the cache
    first_forward_s: float
    peak_rss_mib: float
    to_first_token_s: float


@dataclass
class Report:
    """Everything `gpt2numba bench` measured: printed by format_report, or as JSON."""
    model: str
    threads: int
    threading_layer: str
    versions: dict
    cold: FreshStart
    cached: FreshStart
    forward: dict = field(default_factory=dict)       # n -> Spread of one forward, last-row logits
    forward_gflops: dict = field(default_factory=dict)
    generate_s: float = 0.0
    generate_tokens_per_s: float = 0.0
    load_average: float = 0.0        # the machine's 1-minute load average at the end
    others_busy_cores: float = 0.0   # cores other processes kept busy during the warm runs
    transformers: dict | None = None   # with --plot: {"version", "fresh", "forward": {n: s}}

    def to_json(self):
        """The report as indented JSON, for `gpt2numba bench --json`."""
        return json.dumps(asdict(self), indent=2)


def forward_flops(config, n):
    """Multiply-adds x 2 of one forward over n tokens with the head on the last row only."""
    d, layers = config.n_embd, config.n_layer
    projections = 2 * n * 12 * d * d * layers           # c_attn 3d^2, c_proj d^2, mlp 8d^2
    attention = 2 * n * (n + 1) * d * layers            # q k^T and p v over the causal half
    return projections + attention + 2 * d * config.vocab_size


def run_fresh(args, cache_dir=None, compile_progress=None) -> tuple[dict, float]:
    """Run bench_fresh.py in a new Python process (NUMBA_CACHE_DIR=cache_dir when given) with
    `args`; return the JSON line it prints and the seconds from its start to its `first_token_at`.

    compile_progress(k, n, name) is called as the process compiles kernel k of n.
    """
    env = dict(os.environ, **({} if cache_dir is None else {"NUMBA_CACHE_DIR": cache_dir}))
    start_at = time.time()
    with subprocess.Popen(python_command("gpt2numba.bench_fresh", *args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        errors = []
        for line in child.stderr:   # until the child ends; its stdout is one short line
            if line.startswith(PROGRESS):
                k, n, name = line.split()[1:]
                if compile_progress is not None:
                    compile_progress(int(k), int(n), name)
            else:
                errors.append(line)
        line = child.stdout.readline()
        if child.wait() != 0 or not line:
            last = ("".join(errors).strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"the benchmark's fresh process failed: {last}")
    times = json.loads(line)
    return times, times.pop("first_token_at") - start_at


def fresh_start(folder, threads, cache_dir, compile_progress=None) -> FreshStart:
    """Start a new Python process with NUMBA_CACHE_DIR=cache_dir and time it to the first token
    of the checkpoint in `folder` (resolved beforehand: a fresh process never downloads)."""
    times, to_first_token = run_fresh(["gpt2numba", folder, threads], cache_dir,
                                      compile_progress)
    return FreshStart(**times, to_first_token_s=to_first_token)


def run_benchmark(model_name, revision=None, threads=None, repeats=5, lengths=W1_LENGTHS,
                  progress=lambda message: None, compile_progress=None,
                  before_warm=lambda: None, with_transformers=False) -> Report:
    """Measure everything `gpt2numba bench` reports; `progress` is called with a line per stage,
    compile_progress(k, n, name) as the cold process compiles kernel k of n; before_warm() before
    this process's own warm runs (which use the user's JIT cache). with_transformers:
    also time transformers (a fresh process, warm forwards) on the same checkpoint, when it is
    installed."""
    from gpt2numba import GPT2
    from gpt2numba.weights import resolve

    threads = threads or numba.get_num_threads()   # the model below is given it, every forward
    folder = resolve(model_name, revision=revision)   # download once, fail early and clearly
    with tempfile.TemporaryDirectory(prefix="gpt2numba-bench-cache-") as cache_dir:
        progress("fresh process, empty JIT cache (compiles every kernel)...")
        cold = fresh_start(folder, threads, cache_dir, compile_progress)
        progress("fresh process, populated JIT cache...")
        cached = fresh_start(folder, threads, cache_dir)
    before_warm()
    model = GPT2.from_pretrained(folder, threads=threads)
    others = ThreadCount().start()   # from here on, what other processes use is measured
    report = Report(model=str(model_name), threads=threads, threading_layer="",
                    versions={"numba": numba.__version__, "numpy": np.__version__,
                              "python": sys.version.split()[0]},
                    cold=cold, cached=cached)
    for n in w1_lengths(model.config.n_positions, lengths):
        progress(f"warm forward, {n} tokens...")
        spread = time_calls(our_w1(model, n), repeats)
        report.forward[n] = spread
        report.forward_gflops[n] = forward_flops(model.config, n) / spread.median / 1e9
    progress(f"generation: greedy, {len(W2_PROMPT)}-token prompt, {W2_NEW_TOKENS} new tokens...")
    generate = our_w2(model)
    start = time.perf_counter()
    new_tokens = generate()
    report.generate_s = time.perf_counter() - start
    report.generate_tokens_per_s = new_tokens / report.generate_s
    report.threading_layer = numba.threading_layer()
    report.others_busy_cores = others.others_busy_cores()
    report.load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if with_transformers and transformers_installed():
        progress("transformers: fresh process and warm forwards...")
        report.transformers = time_transformers(folder, threads, repeats, list(report.forward))
    return report


def transformers_installed() -> bool:
    """True when transformers and torch can be imported (the comparison is optional)."""
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("torch", "transformers"))


def time_transformers(folder, threads, repeats, lengths) -> dict:
    """transformers on the checkpoint in `folder`, in a process of its own: a fresh start to the
    first token, and the median warm forward of each of `lengths` tokens."""
    import transformers

    times, to_first_token = run_fresh(["transformers", folder, threads,
                                       ",".join(map(str, lengths)), repeats])
    forward = {int(n): seconds for n, seconds in times.pop("forward").items()}
    return {"version": transformers.__version__,
            "fresh": asdict(FreshStart(**times, to_first_token_s=to_first_token)),
            "forward": forward}


def format_report(report: Report) -> str:
    """The bench table, one measurement per line."""
    rows = [f"gpt2numba bench: {report.model}, {report.threads} threads ({report.threading_layer} "
            f"threading layer), numba {report.versions['numba']}, "
            f"numpy {report.versions['numpy']}, "
            f"python {report.versions['python']}, load average {report.load_average:.2f}",
            f"{'':34}{'empty JIT cache':>18}{'populated cache':>18}"]
    for label, key in [("import", "import_s"), ("load (weights opened)", "load_s"),
                       ("compile (or load from the cache)", "compile_s"),
                       ("first forward (16 tokens)", "first_forward_s"),
                       ("fresh process to first token", "to_first_token_s")]:
        cold, cached = getattr(report.cold, key), getattr(report.cached, key)
        rows.append(f"{label:34}{cold:>16.2f} s{cached:>16.2f} s")
    rows.append(f"{'peak RSS':34}{report.cold.peak_rss_mib:>14.0f} MiB"
                f"{report.cached.peak_rss_mib:>14.0f} MiB")
    rows.append(f"{'warm forward, last-row logits':34}"
                f"{'median':>10}{'min':>10}{'max':>10}{'GFLOP/s':>10}")
    for n, spread in report.forward.items():
        rows.append(f"{f'  {n} tokens':34}{spread.median * 1e3:>7.1f} ms{spread.min * 1e3:>7.1f} ms"
                    f"{spread.max * 1e3:>7.1f} ms{report.forward_gflops[n]:>10.1f}")
    rows.append(f"{'generate (W2: 16 + 64 tokens, greedy)':34}{report.generate_s:>8.2f} s"
                f"{report.generate_tokens_per_s:>12.1f} tokens/s")
    if report.others_busy_cores >= BUSY_CORES:
        rows.append(f"warning: other processes kept {report.others_busy_cores:.1f} cores busy "
                    f"during the warm runs, so these times are slower than on a quiet machine")
    return "\n".join(rows)
