"""lm-evaluation-harness on tests/serve_tasks/, run three ways in one process (its import is
slow): `local-completions` against a gpt2numba server with token-id prompts and with text
prompts, and its own `hf` model on the same checkpoint. Prints {run: {task: {metric: value}}}
as JSON on the last line of stdout.

    python -m support.lm_eval_runs CHECKPOINT SERVER_URL
"""

import json
import sys

from support.paths import TESTS_DIR

TASKS = ["gpt2numba_choice", "gpt2numba_perplexity"]
METRICS = ("acc", "acc_norm", "word_perplexity", "byte_perplexity", "bits_per_byte")


def metrics(results):
    """{task: {metric: value}} of simple_evaluate's results (lm-eval names them "acc,none")."""
    return {task: {name.split(",")[0]: value for name, value in values.items()
                   if name.split(",")[0] in METRICS}
            for task, values in results["results"].items()}


def main(checkpoint, url):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tasks = TaskManager(include_path=str(TESTS_DIR / "serve_tasks"), include_defaults=False)
    served = {"model": checkpoint, "base_url": f"{url}/v1/completions", "max_length": 1024,
              "tokenizer_backend": "remote", "num_concurrent": 1, "max_retries": 1}
    runs = {
        "tokenized": ("local-completions", {**served, "tokenized_requests": True}),
        "text": ("local-completions", {**served, "tokenized_requests": False}),
        "hf": ("hf", {"pretrained": checkpoint, "dtype": "float32", "device": "cpu"}),
    }
    out = {}
    for run, (model, model_args) in runs.items():
        results = simple_evaluate(model=model, model_args=model_args, tasks=TASKS,
                                  task_manager=tasks, batch_size=1, log_samples=False)
        out[run] = metrics(results)
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
