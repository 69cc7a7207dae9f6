"""lm-evaluation-harness scores through `gpt2numba serve` exactly as it scores with its own `hf`
model on the same checkpoint: a multiple-choice task (acc, acc_norm) and a rolling-perplexity
task (word_perplexity, byte_perplexity, bits_per_byte), both defined in tests/serve_tasks/ on
local files, through `local-completions` with token-id prompts and with text prompts (its
remote tokenizer: /tokenizer_info, /tokenize, /detokenize)."""

import json
import subprocess
import sys

import pytest

from support.cli import cli_env
from support.paths import TESTS_DIR


def test_lm_eval_through_the_server_equals_lm_eval_with_hf(server, serve_checkpoint, home,
                                                          tmp_path):
    env = cli_env(home, HF_DATASETS_CACHE=tmp_path / "datasets", HF_DATASETS_OFFLINE=1,
                  TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, "-m", "support.lm_eval_runs", str(serve_checkpoint),
                           server.url], env=env, cwd=TESTS_DIR / "serve_tasks",
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(runs, indent=1))
    expected = {"gpt2numba_choice": {"acc", "acc_norm"},
                "gpt2numba_perplexity": {"word_perplexity", "byte_perplexity", "bits_per_byte"}}
    assert {task: set(values) for task, values in runs["hf"].items()} == expected
    for run in ("tokenized", "text"):
        for task, values in runs["hf"].items():
            for metric, value in values.items():
                assert runs[run][task][metric] == pytest.approx(value, rel=1e-4, abs=0), (
                    run, task, metric)
