"""config.json from anyone: every hostile config is one WeightsError line, within 1 s and 100 MB.

Each case writes the tiny checkpoint with a config.json that lies or attacks, then loads it in
a fresh process that reports the load's own time and the growth of its peak RSS (VmHWM), so
that neither the interpreter's start nor the imports count. Before the checks, `n_layer: 10**9`
grew the process by gigabytes (a list of 12 names per layer) and `10**30` never returned.
"""

import json
import shutil
import subprocess
import sys

import pytest

# Loads argv[1] and prints JSON: the error message (or None), the seconds and MiB the load took.
LOAD_AND_MEASURE = """
import json, sys, time
from gpt2numba import GPT2, WeightsError
from gpt2numba.bench import peak_rss_bytes

before, start = peak_rss_bytes() // 1024, time.perf_counter()
try:
    GPT2.from_pretrained(sys.argv[1])
    error = None
except WeightsError as e:
    error = str(e)
print(json.dumps({"error": error, "seconds": time.perf_counter() - start,
                  "grew_mib": (peak_rss_bytes() // 1024 - before) / 1024}))
"""

HOSTILE = {
    "a billion layers": ('{"n_layer": 1000000000}', "n_layer is 1000000000"),
    "10**30 layers": ('{"n_layer": 1' + "0" * 30 + "}", "n_layer is 1000000000000"),
    "a million heads": ('{"n_head": 1000000}', "n_head is 1000000"),
    "more layers than the file": ('{"n_layer": 3, "n_head": 4, "n_embd": 64, "n_positions": 128}',
                                  "holds 2 layers but config.json says n_layer=3"),
    "100000 nested brackets": ('{"n_layer": ' + "[" * 100_000 + "]" * 100_000 + "}",
                               "nests JSON 100001 levels deep"),
    "a 5000-digit integer": ('{"n_layer": ' + "9" * 5000 + "}", "is not valid JSON"),
    "epsilon infinite in float32": ('{"layer_norm_epsilon": 1e300}', "float32"),
    "epsilon zero in float32": ('{"layer_norm_epsilon": 1e-50}', "float32"),
    "two megabytes of config": ('{"note": "' + "x" * (2 << 20) + '"}', "larger than 1 MiB"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_config_is_one_line_fast_and_small(case, tiny_checkpoint, tmp_path):
    text, words = HOSTILE[case]
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "config.json").write_text(text)
    run = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(folder)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["error"] is not None and "\n" not in result["error"]
    assert str(folder / "config.json") in result["error"] or "model.safetensors" in result["error"]
    assert words in result["error"]
    assert result["seconds"] < 1.0 and result["grew_mib"] < 100, result


def test_the_command_line_says_it_in_one_line(tiny_checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "config.json").write_text('{"n_layer": 1000000000}')
    run = subprocess.run([sys.executable, "-m", "gpt2numba", "run", "--model", str(folder),
                          "--prompt", "Hello"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [run.stderr.strip()]
    assert run.stderr.startswith("gpt2numba: error: ") and "n_layer is 1000000000" in run.stderr
