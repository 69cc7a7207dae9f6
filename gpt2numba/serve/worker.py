"""The one thread that runs the model for every request, in rounds that share forwards.

The model's kernels run one caller at a time (runtime.running holds a lock), and a forward
must not block the server's event loop: so each request becomes a job, a generator
(completions.steps) that yields its results and, where it needs the logits of its next token,
a NextTokenLogits of its ids; the worker sends that row of logits back into the generator.

One worker thread runs rounds. A round takes the jobs at the front of the line whose asks fit
in `rows` rows together (a job that does not fit stays at the front, first in the next round,
so none starves), computes the next-token logits of all their asks in one packed forward, and
hands each job its row; each job of the round then runs on (a new one from its start) until it
asks again or ends, and goes to the back of the line. So concurrent generations share forwards,
each token of each job is one round, and a long generation delays a short request by a round
at a time, not by its whole length. At most `capacity` jobs wait or run; one more is refused
(QueueFull), so that a burst of clients is told to come back instead of piling up.
"""

import logging
import threading
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("gpt2numba.serve")

FINISHED = object()   # what a job delivers after its last step


@dataclass(frozen=True)
class NextTokenLogits:
    """What a job yields to ask for the logits of the token after `ids` (at most `rows` token
    ids): the worker sends back float32 [vocab]."""

    ids: list[int]


class QueueFull(Exception):
    """`capacity` jobs are already waiting or running."""


class Cancelled(Exception):
    """The client went away: the job ended before its next forward."""


class Job:
    """A request's steps (a generator: see the module docstring) and where their results go:
    `deliver` gets each value they yield, then FINISHED, or the exception that ended them
    (then nothing more)."""

    def __init__(self, steps, deliver):
        self.cancelled = threading.Event()
        self.steps = steps
        self.deliver = deliver
        self.asks = None   # the ids of the job's NextTokenLogits, while it waits for them

    def cancel(self):
        """Ask the job to stop before its next forward."""
        self.cancelled.set()

    @property
    def rows(self) -> int:
        """Rows of the next forward the job needs: its ask's ids (none before it starts)."""
        return 0 if self.asks is None else len(self.asks)

    def advance(self, logits=None, failure=None) -> bool:
        """Send the job the logits it asked for (None to start it), or raise in its steps the
        `failure` of the forward that was to compute them, and deliver what the steps yield
        until they ask again (False) or end (True). A cancelled job ends here, its steps
        closed."""
        if self.cancelled.is_set():
            self.steps.close()
            return self._end(Cancelled())
        try:
            value = self.steps.throw(failure) if failure else self.steps.send(logits)
            while not isinstance(value, NextTokenLogits):
                self._deliver(value)
                value = next(self.steps)
        except StopIteration:
            return self._end(FINISHED)
        except Exception as error:   # the request's failure, never the worker's
            return self._end(error)
        self.asks = value.ids
        return False

    def _end(self, value) -> bool:
        self._deliver(value)
        return True

    def _deliver(self, value):
        try:
            self.deliver(value)
        except Exception:   # the receiver is gone (its event loop closed at shutdown)
            log.debug("a result had no receiver", exc_info=True)


class Worker:
    """One thread running at most `capacity` jobs in rounds (see the module docstring);
    `next_token_logits(id_lists)` computes a round's asks, float32 [len(id_lists), vocab], in
    one forward of at most `rows` rows (GPT2.packed_next_token_logits, n_positions)."""

    def __init__(self, capacity, next_token_logits, rows):
        self.capacity = capacity
        self.next_token_logits = next_token_logits
        self.rows = rows
        self._line = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._running = 0
        self._thread = threading.Thread(target=self._run, name="gpt2numba-model", daemon=True)

    @property
    def jobs(self) -> int:
        """How many jobs are waiting or running now."""
        with self._changed:
            return len(self._line) + self._running

    def start(self):
        """Start the thread."""
        self._thread.start()

    def submit(self, steps, deliver) -> Job:
        """Queue a job of `steps` (a generator, not started); QueueFull when `capacity` jobs
        are in already."""
        with self._changed:
            if len(self._line) + self._running >= self.capacity or self._stopping:
                raise QueueFull
            job = Job(steps, deliver)
            self._line.append(job)
            self._changed.notify()
            return job

    def stop(self, timeout=None):
        """Finish the jobs in hand, take no new ones, and end the thread (wait `timeout`)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self):
        while True:
            with self._changed:
                while not self._line and not self._stopping:
                    self._changed.wait()
                if not self._line:
                    return
                batch = self._take()
                self._running = len(batch)
            going_on = self._round(batch)
            with self._changed:
                self._running = 0
                self._line.extend(going_on)

    def _take(self) -> list[Job]:
        """The jobs at the front of the line whose asks fit in `rows` rows together (the first
        always does), taken out of it."""
        batch = [self._line.popleft()]
        rows = batch[0].rows
        while self._line and rows + self._line[0].rows <= self.rows:
            batch.append(self._line.popleft())
            rows += batch[-1].rows
        return batch

    def _round(self, batch) -> list[Job]:
        """One forward for the asks of `batch`'s jobs (the cancelled left out), then each job
        runs on; the jobs that have not ended, in order."""
        asking = [job for job in batch if job.asks is not None and not job.cancelled.is_set()]
        answers = self._answers(asking) if asking else {}
        return [job for job in batch if not job.advance(*answers.get(job, (None, None)))]

    def _answers(self, asking) -> dict:
        """{job: (its row of logits, None), or (None, the exception its forward raised)} for
        the asks of `asking`: one forward for all; if that fails, one forward for each, so
        that a job's failure is its own."""
        try:
            rows = self.next_token_logits([job.asks for job in asking])
        except Exception as error:   # the requests' failure, never the worker's
            if len(asking) == 1:
                return {asking[0]: (None, error)}
            return {job: self._answers([job])[job] for job in asking}
        return {job: (row, None) for job, row in zip(asking, rows)}
