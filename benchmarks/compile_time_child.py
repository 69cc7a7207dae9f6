"""compile_time.py's child: import the package, compile every kernel with `gpt2numba.compile()`
and run one forward of a tiny GPT-2, with every compile timed by Numba's compile events; print a
JSON report.

    python benchmarks/compile_time_child.py one-process|two-processes

one-process: every compile in this process, where the listener sees it; two-processes: as a
first run compiles (in two other processes), of which only the wall time is seen here.
"""

import json
import sys
import time


def main(how):
    """Print the JSON report: CPU seconds of the import and of compile() (and its wall time), per
    compiled function its CPU seconds and versions, and what the forward compiled after."""
    start = time.process_time()
    import numpy as np
    from numba.core import event

    import gpt2numba.kernels  # noqa: F401  (the threading layer and the kernels' module code)
    from gpt2numba import compiling
    from gpt2numba.blocks import gpt2
    from gpt2numba.compiling import compile
    from gpt2numba.config import GPT2Config
    from gpt2numba.params import params_from_tensors
    from gpt2numba.weights import tensor_shapes
    imported = time.process_time()

    class CompileTimes(event.Listener):
        def __init__(self):
            self.stack, self.seconds, self.versions = [], {}, {}

        def on_start(self, ev):
            self.stack.append([time.process_time(), 0.0])

        def on_end(self, ev):
            began, nested = self.stack.pop()
            spent = time.process_time() - began
            name = ev.data["dispatcher"].py_func.__qualname__
            self.seconds[name] = self.seconds.get(name, 0.0) + spent - nested
            self.versions[name] = self.versions.get(name, 0) + 1
            if self.stack:
                self.stack[-1][1] += spent

    if how == "one-process":  # every compile here, where the listener sees it
        compiling.compiler_process.start = lambda names: None
    times = CompileTimes()
    event.register("numba:compile", times)
    before, wall = time.process_time(), time.perf_counter()
    compile()
    compiled, wall = time.process_time() - before, time.perf_counter() - wall
    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=8, vocab_size=11)
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in tensor_shapes(config).items():
        tensors[name] = rng.standard_normal(shape, dtype=np.float32)
        tensors[name].flags.writeable = False  # as the model's mapped weights
    params = params_from_tensors(tensors, config, ".")
    versions = sum(times.versions.values())
    gpt2(np.arange(5), np.arange(5), params, config.n_head, config.layer_norm_epsilon, head_from=4)
    print(json.dumps({"import": imported - start, "compile": compiled, "wall": wall,
                      "seconds": times.seconds, "versions": times.versions,
                      "forward_compiles": sum(times.versions.values()) - versions}))


if __name__ == "__main__":
    main(sys.argv[1])
