"""Memory: loading a 124M-shaped checkpoint costs at most 1.3x its file size, measured.

Each measurement runs in a fresh process (python -c), and reads its peak RSS from VmHWM in
/proc/self/status, which starts anew at exec. (Not ru_maxrss: Linux carries it across exec, and
subprocess starts children with vfork, so a child would report the pytest process's own peak.)
The figures are printed (see them with pytest -s).
"""

import json
import subprocess
import sys
import textwrap

import pytest

from support.checkpoints import SHAPES

BOUND = 1.3  # "at most 1.3x the file size"

# Common head of the measuring children: imports, then the baseline RSS.
PRELUDE = textwrap.dedent("""
    import gc, json, os, sys
    import numpy as np
    from gpt2numba import weights
    from gpt2numba.config import GPT2Config

    def rss_kib():  # current resident set, KiB
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    def peak_kib():  # peak resident set of this process image so far, KiB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    folder = sys.argv[1]
    base = rss_kib()
    config = GPT2Config.from_folder(folder)
    tensors = weights.load_tensors(folder, config)
""")

# Load, touch every tensor (every page is read), keep them all; then drop one, then all.
TOUCH_ALL = PRELUDE + textwrap.dedent("""
    checksum = sum(float(t.sum(dtype=np.float64)) for t in tensors.values())
    touched = rss_kib()
    wte_kib = tensors["wte.weight"].nbytes // 1024
    del tensors["wte.weight"]
    gc.collect()
    without_wte = rss_kib()
    del tensors
    gc.collect()
    print(json.dumps({"base": base, "peak": peak_kib(), "touched": touched, "wte": wte_kib,
                      "without_wte": without_wte, "dropped": rss_kib()}))
""")

# What a model does: make its own (transposed) copy of each weight, drop the mapped original.
COPY_AND_DROP = PRELUDE + textwrap.dedent("""
    copies = {}
    for name in list(tensors):
        copies[name] = np.ascontiguousarray(tensors.pop(name).T)
    print(json.dumps({"base": base, "peak": peak_kib(), "end": rss_kib()}))
""")


@pytest.fixture(scope="session")
def gpt2_124m(tmp_path_factory):
    """A 124M-shaped random checkpoint (about 500 MB), built once per session, in a child."""
    folder = tmp_path_factory.mktemp("gpt2_124m")
    code = ("import sys\nfrom support.checkpoints import make_checkpoint, SHAPES\n"
            "make_checkpoint(sys.argv[1], initializer_range=0.02, **SHAPES['gpt2'])")
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True,
                   capture_output=True, timeout=600)
    return folder


def measure(code, folder):
    run = subprocess.run([sys.executable, "-c", code, str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_checkpoint_has_gpt2_shapes(gpt2_124m):
    config = json.loads((gpt2_124m / "config.json").read_text())
    assert {k: config[k] for k in SHAPES["gpt2"]} == SHAPES["gpt2"]


def test_loading_and_touching_every_tensor_costs_at_most_1_3x_the_file(gpt2_124m):
    file_kib = (gpt2_124m / "model.safetensors").stat().st_size / 1024
    m = measure(TOUCH_ALL, gpt2_124m)
    grown = m["peak"] - m["base"]
    print(f"\n[memory] file {file_kib / 1024:.1f} MiB; after imports {m['base'] / 1024:.1f} MiB; "
          f"load + touch all: peak {m['peak'] / 1024:.1f} MiB, grew {grown / 1024:.1f} MiB = "
          f"{grown / file_kib:.3f}x the file; dropping wte ({m['wte'] / 1024:.1f} MiB) freed "
          f"{(m['touched'] - m['without_wte']) / 1024:.1f} MiB; dropping all left "
          f"{(m['dropped'] - m['base']) / 1024:.1f} MiB above the baseline")
    assert grown <= BOUND * file_kib
    # every page was read: a load that did not touch the data would prove nothing
    assert m["touched"] - m["base"] >= 0.95 * file_kib
    # wte has its own mapping: dropping it alone gives its pages back while the rest stays
    assert m["touched"] - m["without_wte"] >= 0.95 * m["wte"]
    assert m["without_wte"] - m["base"] >= 0.95 * (file_kib - m["wte"])
    # and nothing was copied behind the caller's back
    assert m["dropped"] - m["base"] <= 0.05 * file_kib


def test_copying_each_tensor_and_dropping_the_mapping_stays_near_1x(gpt2_124m):
    file_kib = (gpt2_124m / "model.safetensors").stat().st_size / 1024
    m = measure(COPY_AND_DROP, gpt2_124m)
    grown = m["peak"] - m["base"]
    print(f"\n[memory] copy each tensor (transposed) and drop its mapping: peak grew "
          f"{grown / 1024:.1f} MiB = {grown / file_kib:.3f}x the file; at the end "
          f"{(m['end'] - m['base']) / 1024:.1f} MiB (the copies)")
    assert grown <= BOUND * file_kib
    assert m["end"] - m["base"] <= 1.05 * file_kib  # only the copies remain
