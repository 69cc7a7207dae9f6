"""BatchScorers that Ray actors of the tests run: importable by the workers (PYTHONPATH holds
tests/), they report from inside each actor, or kill it once.

Both read the folder RAY_TEST_DIR from the environment the Ray instance was started with.
"""

import json
import os
import signal

from gpt2numba.batch_scorer import BatchScorer

RAY_TEST_DIR = "GPT2NUMBA_RAY_TEST_DIR"
KILL_AFTER_BATCHES = 3


class ReportingScorer(BatchScorer):
    """Writes report-PID.json into RAY_TEST_DIR once built: its process, Numba's thread count
    and maximum, the model's threads, and how many compiles it ran."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        import numba

        report = dict(pid=os.getpid(), numba_threads=numba.get_num_threads(),
                      numba_max_threads=numba.config.NUMBA_NUM_THREADS,
                      model_threads=self.model.threads, compiles=self.compiles)
        folder = os.environ[RAY_TEST_DIR]
        with open(os.path.join(folder, f"report-{os.getpid()}.json"), "w") as file:
            json.dump(report, file)


class KillingScorer(BatchScorer):
    """Kills its own process (SIGKILL, as a lost node or the OOM killer would) at its
    KILL_AFTER_BATCHES-th batch, unless an actor did so before: once per RAY_TEST_DIR, by the
    marker file `killed` that the killer creates first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = 0

    def __call__(self, batch):
        self.batches += 1
        if self.batches == KILL_AFTER_BATCHES:
            try:
                os.close(os.open(os.path.join(os.environ[RAY_TEST_DIR], "killed"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)
