"""Scoring a corpus on a Ray cluster: Ray Data reads it, a pool of actors scores it, and the
scores are written in the input's order: into one file by this process (corpus.ScoresWriter),
or into a folder or URI by Ray Data's write tasks, as part files (corpus_ray_folder).

Each actor is a batch_scorer.BatchScorer with `cpus_per_actor` CPUs (its Numba threads), so
`actors` x `cpus_per_actor` CPUs of the cluster score at once. An actor that dies (a node lost,
the OOM killer) is restarted and its batches are retried, as Ray Data does for its actor pools
(max_restarts and max_task_retries -1), and the output still has every row once.
"""

import sys
from pathlib import Path

from gpt2numba.batch_scorer import SCORE_COLUMNS, TOKEN_LOGPROBS, BatchScorer
from gpt2numba.corpus import (
    BATCH_ROWS,
    FORMATS,
    CorpusError,
    ScoresWriter,
    corpus_files,
    is_folder_output,
)

POSITION = "__gpt2numba_position"   # a row's position in the input, while it is scored


def read_dataset(input_path):
    """The Ray Dataset of a corpus: a local file or folder (corpus.corpus_files), or any path
    Ray reads (object storage), whose format is told by its suffix. JSONL is read by Arrow,
    which types each field across the rows (a field missing from a row is null)."""
    import ray.data

    if "://" in str(input_path):
        suffix = Path(str(input_path).rstrip("/")).suffix.lower()
        if suffix not in FORMATS:
            raise CorpusError(f"{input_path}: cannot tell the format from the name; end it in "
                              f".jsonl or .parquet")
        fmt, paths = FORMATS[suffix], str(input_path)
    else:
        fmt, files = corpus_files(input_path)
        paths = [str(path) for path in files]
    # Reading takes no CPU of its own: the actors hold the CPUs, and a read task waiting for
    # one would wait for ever on a cluster whose CPUs they all hold. Ray's second read path
    # (use_datasource_v2) lists Parquet files in a task of one CPU that num_cpus does not reach.
    read = ray.data.read_json if fmt == "jsonl" else ray.data.read_parquet
    context = ray.data.DataContext.get_current()
    if hasattr(context, "use_datasource_v2"):
        context.use_datasource_v2 = False
    return read(paths, num_cpus=0)


def score_on_ray(model, input_path, output_path, *, text_field="text", id_field="id",
                 revision=None, stride=None, token_logprobs=False, actors=None,
                 cpus_per_actor=1, scorer=BatchScorer) -> int:
    """Score the corpus at input_path on the Ray cluster this process is connected to
    (ray.init) into output_path, with `actors` actors (default: the cluster's CPUs /
    cpus_per_actor) of the class `scorer`. An output that is a folder or a URI
    (corpus.is_folder_output) is written by Ray Data as part files (corpus_ray_folder);
    one file is written by this process. Returns the rows written."""
    import ray.data

    folder = None
    if is_folder_output(output_path):
        from gpt2numba.corpus_ray_folder import FolderOutput

        folder = FolderOutput(output_path)   # refused before any work
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = sys.stderr is not None and sys.stderr.isatty()
    dataset = read_dataset(input_path)
    schema = dataset.schema()
    if schema is None:   # Ray Data cannot type a corpus without rows
        raise CorpusError(f"{input_path}: the corpus has no rows; there is nothing to score")
    names = schema.names
    if text_field not in names:
        raise CorpusError(f"{input_path}: no column {text_field!r} (it has {names}); name the "
                          f"texts' column with --text-field")
    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
    columns = (*SCORE_COLUMNS, *((TOKEN_LOGPROBS,) if token_logprobs else ()))
    score = dict(batch_size=BATCH_ROWS, batch_format="pandas", num_cpus=cpus_per_actor,
                 compute=ray.data.ActorPoolStrategy(size=actors),
                 fn_constructor_kwargs=dict(model=model, revision=revision, stride=stride,
                                            threads=cpus_per_actor, text_column=text_field,
                                            token_logprobs=token_logprobs))
    if folder is not None:
        return _score_into_folder(dataset, folder, scorer, score, id_field, text_field, columns)
    scored = dataset.map_batches(scorer, **score)
    rows = 0
    with ScoresWriter(output_path, token_logprobs) as writer:
        for batch in scored.iter_batches(batch_size=BATCH_ROWS, batch_format="pandas"):
            ids = _ids(batch, id_field, range(rows, rows + len(batch)))
            writer.write(ids, {name: _values(batch[name]) for name in columns})
            rows += len(batch)
    return rows


def _score_into_folder(dataset, folder, scorer, score, id_field, text_field, columns) -> int:
    """Score `dataset` with `scorer` (map_batches options `score`) and write its rows with
    Ray Data into `folder` (a corpus_ray_folder.FolderOutput). Returns the rows written."""
    from gpt2numba.corpus_ray_folder import numbered

    dataset, rows = numbered(dataset, id_field, POSITION)
    needed = [name for name in (id_field, text_field, POSITION) if name in dataset.schema().names]
    scored = dataset.select_columns(needed).map_batches(scorer, **score)
    folder.write(scored.map_batches(_output_rows, batch_size=None, batch_format="pandas",
                                    num_cpus=0, fn_kwargs=dict(folder=folder, id_field=id_field,
                                                               columns=columns)))
    return rows


def _output_rows(batch, *, folder, id_field, columns):
    """A batch of the scorer's output (a DataFrame) as the rows `folder` writes: id (copied,
    or the row's POSITION where it has none) and the score `columns`."""
    positions = batch[POSITION].tolist() if POSITION in batch else [None] * len(batch)
    return folder.rows(_ids(batch, id_field, positions),
                       {name: _values(batch[name]) for name in columns})


def _ids(batch, id_field, positions) -> list:
    """The batch's ids as Python values; the row's position (from `positions`) where it has
    none."""
    if id_field not in batch:
        return list(positions)
    return [position if _is_missing(value) else _plain(value)
            for position, value in zip(positions, batch[id_field].tolist())]


def _values(series) -> list:
    """A pandas column as Python values, None where it is null."""
    return [None if _is_missing(value) else _plain(value) for value in series.tolist()]


def _is_missing(value) -> bool:
    import pandas as pd

    return value is None or (not hasattr(value, "__len__") and bool(pd.isna(value)))


def _plain(value):
    """A NumPy scalar as the Python value it holds; anything else as it is."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
