"""The one thread that runs the model for every request, taking turns.

The model's kernels run one caller at a time (runtime.running holds a lock), and a forward
must not block the server's event loop: so each request becomes a job, a generator of steps
(completions.steps: one forward each), and one worker thread runs a step of each job in turn,
round robin. A long generation then delays a short request by a step at a time, not by its
whole length. At most `capacity` jobs wait or run; one more is refused (QueueFull), so that a
burst of clients is told to come back instead of piling up.
"""

import logging
import threading
from collections import deque

log = logging.getLogger("gpt2numba.serve")

FINISHED = object()   # what a job delivers after its last step


class QueueFull(Exception):
    """`capacity` jobs are already waiting or running."""


class Job:
    """A request's steps and where their results go: the steps are make_steps(cancelled), a
    generator given a function that says whether the job was cancelled (completions.steps asks
    it before each forward); `deliver` gets each step's value, then FINISHED, or the exception
    a step raised (then nothing more)."""

    def __init__(self, make_steps, deliver):
        self.cancelled = threading.Event()
        self.steps = make_steps(self.cancelled.is_set)
        self.deliver = deliver

    def cancel(self):
        """Ask the job to stop before its next forward."""
        self.cancelled.set()

    def step(self) -> bool:
        """Run one step and deliver its value; True when the job has ended."""
        try:
            value = next(self.steps)
        except StopIteration:
            self._deliver(FINISHED)
            return True
        except Exception as error:   # the request's failure, never the worker's
            self._deliver(error)
            return True
        self._deliver(value)
        return False

    def _deliver(self, value):
        try:
            self.deliver(value)
        except Exception:   # the receiver is gone (its event loop closed at shutdown)
            log.debug("a result had no receiver", exc_info=True)


class Worker:
    """One thread running the steps of at most `capacity` jobs, one step of each in turn."""

    def __init__(self, capacity):
        self.capacity = capacity
        self._jobs = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._running = 0
        self._thread = threading.Thread(target=self._run, name="gpt2numba-model", daemon=True)

    @property
    def jobs(self) -> int:
        """How many jobs are waiting or running now."""
        with self._changed:
            return len(self._jobs) + self._running

    def start(self):
        """Start the thread."""
        self._thread.start()

    def submit(self, make_steps, deliver) -> Job:
        """Queue a job whose steps are make_steps(cancelled), a generator given the job's
        cancel flag's is_set; QueueFull when `capacity` jobs are in already."""
        with self._changed:
            if len(self._jobs) + self._running >= self.capacity or self._stopping:
                raise QueueFull
            job = Job(make_steps, deliver)
            self._jobs.append(job)
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
                while not self._jobs and not self._stopping:
                    self._changed.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._running = 1
            ended = job.step()
            with self._changed:
                self._running = 0
                if not ended:
                    self._jobs.append(job)
