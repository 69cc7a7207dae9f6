"""A scorer for batch engines: built once per worker, called on batches of texts.

Ray Data's batch inference calls a class like this one from a pool of actors, each holding one
model:

    scored = dataset.map_batches(BatchScorer, fn_constructor_kwargs={"model": "gpt2"},
                                 compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)

and the same class takes a pandas DataFrame, so Dask (`map_partitions`) and Spark
(`mapInPandas`) can call it too. A batch comes back with the columns SCORE_COLUMNS added (and
`token_logprobs` when asked for); a text of fewer than two tokens (or a null text) gets null
scores instead of an error that would end the job.

Numba inside a worker: it reads NUMBA_NUM_THREADS once, when it is imported, and Ray's
OMP_NUM_THREADS means nothing to it. So the scorer sets NUMBA_NUM_THREADS to the worker's CPUs
(Ray's num_cpus for the actor, or `threads`) before anything imports Numba, and several workers
on a node never run more threads than the CPUs they were given. The kernels are compiled one
worker at a time into the node's disk cache (runtime.prepare_worker): the first worker compiles,
the others load. Nothing is printed; one INFO record per worker on the `gpt2numba` logger says
what it loaded.
"""

import logging
import math
import os
import sys
import time

import numpy as np

SCORE_COLUMNS = ("tokens", "nll", "perplexity", "bits_per_byte")
TOKEN_LOGPROBS = "token_logprobs"

log = logging.getLogger("gpt2numba")


def engine_cpus() -> int | None:
    """The CPUs the batch engine gave this worker: Ray's CPU resource of the running actor or
    task (at least 1), or None outside Ray."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return max(1, math.floor(cpus)) if cpus else None


def bits_per_byte(nll, text) -> float:
    """nll (nats) / (ln 2 x the UTF-8 bytes of `text`): bits per byte of the text."""
    return nll / (math.log(2) * len(text.encode("utf-8")))


def score_columns(model, texts, stride=None, token_logprobs=False) -> dict[str, list]:
    """The score columns of `texts` (a sequence of str or None), as lists of one value per text:
    tokens (int), nll, perplexity, bits_per_byte (float), and with token_logprobs the
    log-probabilities of the scored tokens ([tokens] float64 each). A text of fewer than two
    tokens, or None, gets None in every column. ArgumentError (from the model) for a bad stride
    or a text that is neither str nor None."""
    from gpt2numba.errors import ArgumentError

    present = [i for i, text in enumerate(texts) if text is not None]
    for i in present:
        if not isinstance(texts[i], str):
            raise ArgumentError("texts", f"text {i} of the batch is a {type(texts[i]).__name__}, "
                                         f"not a str: scoring needs texts (or null)")
    encoded = {i: model.tokenizer.encode(texts[i]) for i in present}
    scorable = [i for i in present if len(encoded[i]) >= 2]   # the others have nothing to score
    scores = dict(zip(scorable, model.score_many_ids([encoded[i] for i in scorable], stride)))
    columns = {name: [None] * len(texts) for name in SCORE_COLUMNS}
    if token_logprobs:
        columns[TOKEN_LOGPROBS] = [None] * len(texts)
    for i, score in scores.items():
        columns["tokens"][i] = score.tokens
        columns["nll"][i] = score.nll
        columns["perplexity"][i] = score.perplexity
        columns["bits_per_byte"][i] = bits_per_byte(score.nll, texts[i])
        if token_logprobs:
            columns[TOKEN_LOGPROBS][i] = score.token_logprobs
    return columns


class BatchScorer:
    """Scores batches of texts with one model, loaded once (see the module docstring).

    model, revision: as GPT2.from_pretrained; stride: as GPT2.score; threads: the worker's
    thread count, by default the CPUs the engine gave it (engine_cpus) or, outside an engine,
    GPT2's default; text_column: the batch's column of texts; token_logprobs: add that column.
    Attributes a caller may read: `model` (the GPT2), `threads`, `compiles` (how many kernel
    compiles this worker ran: 0 when the node's cache held them all).
    """

    def __init__(self, model="gpt2", *, revision=None, stride=None, threads=None,
                 text_column="text", token_logprobs=False):
        start = time.perf_counter()
        self.threads = threads or engine_cpus()
        if self.threads is not None and "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(self.threads)   # read once, at Numba's import
        import numba

        from gpt2numba import runtime
        from gpt2numba.model import GPT2
        from gpt2numba.score import check_stride

        if self.threads is not None:   # Numba imported before us: at most its own maximum
            self.threads = min(self.threads, numba.config.NUMBA_NUM_THREADS)
        self.compiles = runtime.prepare_worker()
        self.model = GPT2.from_pretrained(model, revision, threads=self.threads)
        self.stride = check_stride(stride, self.model.config.n_positions)
        self.text_column = text_column
        self.token_logprobs = token_logprobs
        log.info("gpt2numba: scorer of %s ready in process %d in %.1f s: %s thread(s), %s",
                 model, os.getpid(), time.perf_counter() - start, self.threads or "idle-core",
                 f"{self.compiles} kernel compile(s)" if self.compiles else "kernels from cache")

    def __call__(self, batch):
        """`batch` (a dict of equal-length numpy arrays, or a pandas DataFrame) with the score
        columns added; an empty batch gives an empty batch with those columns. ArgumentError
        when the batch has no text_column."""
        from gpt2numba.errors import ArgumentError

        columns = list(batch.keys())
        if self.text_column not in columns:
            raise ArgumentError("text_column", f"the batch has no column {self.text_column!r} "
                                               f"(it has {columns}); pass text_column=...")
        texts = [None if _is_null(text) else text for text in list(batch[self.text_column])]
        scores = score_columns(self.model, texts, self.stride, self.token_logprobs)
        if isinstance(batch, dict):
            return {**batch, **{name: _numpy_column(name, values)
                                for name, values in scores.items()}}
        return batch.assign(**{name: _pandas_column(name, values)
                               for name, values in scores.items()})


def _is_null(value) -> bool:
    """None, or the NaN that pandas and NumPy put where a text is missing."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _numpy_column(name, values) -> np.ndarray:
    """A column of `values` for a dict-of-arrays batch: int64 or float64 without nulls, else an
    object array holding None where a value is null (Arrow reads those as nulls)."""
    if name == TOKEN_LOGPROBS or any(value is None for value in values):
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column
    return np.array(values, dtype=np.int64 if name == "tokens" else np.float64)


def _pandas_column(name, values):
    """A column of `values` for a DataFrame: pandas' nullable Int64 / Float64, or objects."""
    import pandas as pd

    if name == TOKEN_LOGPROBS:
        return _numpy_column(name, values)   # positional, whatever the frame's index
    return pd.array(values, dtype="Int64" if name == "tokens" else "Float64")
