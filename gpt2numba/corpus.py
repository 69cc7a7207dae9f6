"""A corpus in, its scores out: JSONL or Parquet files, row by row, locally or on Ray.

A corpus is a JSONL file (one JSON object per line), a Parquet file, or a folder of files of
one of the two formats. Each row's text is in its field `text_field`; the output has one row per
input row, in the input's order: the row's `id_field` copied as it is (the row's position in the
corpus, from 0, where it has none) and the score columns of batch_scorer (a text of fewer than
two tokens, or a null one, gets null scores). The output is written under a temporary name and
renamed when complete, so a failed run leaves no half-written file.

Locally, rows are read, scored and written BATCH_ROWS at a time; on Ray (score_on_ray), Ray Data
reads the input (anything it reads: a folder, object storage), a pool of actors scores it
(batch_scorer.BatchScorer) and this process writes the rows as they come, in order; or, for
an output that is a folder or a URI (is_folder_output), Ray Data writes them as part files
(corpus_ray_folder.py, docs/corpus.md).
"""

import json
import os
from pathlib import Path

from gpt2numba.batch_scorer import SCORE_COLUMNS, TOKEN_LOGPROBS, score_columns

BATCH_ROWS = 64
LINE_LIMIT_BYTES = 16 * 2**20   # one JSONL row, as one text file of `gpt2numba score`
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


class CorpusError(Exception):
    """A corpus that cannot be read or written; the message names the file and says why."""


def corpus_format(path) -> str:
    """"jsonl" or "parquet", from the name's suffix; CorpusError for any other."""
    suffix = Path(str(path)).suffix.lower()
    if suffix not in FORMATS:
        raise CorpusError(f"{path}: cannot tell the format from the name; a corpus file ends in "
                          f".jsonl (or .ndjson, .json: JSON Lines) or .parquet")
    return FORMATS[suffix]


def is_folder_output(path) -> bool:
    """Whether an --output names a folder of part files, written by Ray Data: a URI
    (s3://, gs://, file://, ...), a path ending in "/", or an existing folder. Anything else
    is one file, written by this process."""
    text = str(path)
    return "://" in text or text.endswith(("/", os.sep)) or Path(text).is_dir()


def folder_format(path) -> str:
    """"jsonl" or "parquet" for a folder output, from its name's suffix (scores.parquet/);
    CorpusError for any other."""
    name = str(path).rstrip("/" + os.sep)
    if Path(name).suffix.lower() not in FORMATS:
        raise CorpusError(f"{path}: cannot tell the output format from the folder's name; end "
                          f"it in .jsonl or .parquet (scores.parquet/, s3://bucket/scores.jsonl)")
    return corpus_format(name)


def corpus_files(path) -> tuple[str, list[Path]]:
    """(format, files) of a corpus file or folder (its files of a known suffix, by name);
    CorpusError when there is none, or a folder mixes the two formats."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in FORMATS)
        formats = {FORMATS[f.suffix.lower()] for f in files}
        if len(formats) != 1:
            found = "both JSONL and Parquet files" if formats else "no .jsonl or .parquet file"
            raise CorpusError(f"{path}: the folder holds {found}; a corpus folder holds files of "
                              f"one format")
        return formats.pop(), files
    if not path.is_file():
        raise CorpusError(f"{path}: no such file or folder")
    return corpus_format(path), [path]


def read_rows(fmt, files, text_field, id_field):
    """Yield (id, text) per row of the corpus `files` of format `fmt`, in order: the id as it
    is, or the row's position where it has none; the text None where the row has none. A text
    that is present but not a string is a CorpusError naming its row."""
    rows = _jsonl_rows(files) if fmt == "jsonl" else _parquet_rows(files, text_field, id_field)
    for position, (name, line, row) in enumerate(rows):
        text = row.get(text_field)
        if text is not None and not isinstance(text, str):
            raise CorpusError(f"{name}, row {line}: field {text_field!r} is a "
                              f"{type(text).__name__}, not a string")
        row_id = row.get(id_field)
        yield (position if row_id is None else row_id), text


def _jsonl_rows(files):
    """(file, line number, the row as a dict) for each non-empty line of JSONL `files`."""
    for path in files:
        with _open(path, "rb") as file:
            for number, line in enumerate(iter(lambda: file.readline(LINE_LIMIT_BYTES + 1),
                                               b""), start=1):
                if len(line) > LINE_LIMIT_BYTES:
                    raise CorpusError(f"{path}, line {number}: longer than "
                                      f"{LINE_LIMIT_BYTES // 2**20} MiB; split the text")
                if line.strip():
                    yield path, number, _json_object(path, number, line)


def _json_object(path, number, line) -> dict:
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as error:   # UnicodeDecodeError is a ValueError
        raise CorpusError(f"{path}, line {number}: not JSON ({error})") from None
    if not isinstance(row, dict):
        raise CorpusError(f"{path}, line {number}: a {type(row).__name__}, not a JSON object; "
                          f"each line of a JSONL corpus is one object")
    return row


def _parquet_rows(files, text_field, id_field):
    """(file, row number, {field: value}) for each row of Parquet `files`, read BATCH_ROWS at a
    time; CorpusError when a file has no column `text_field`."""
    import pyarrow.parquet as pq

    for path in files:
        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:   # pyarrow's ArrowInvalid, OSError: not a Parquet file
            raise CorpusError(f"{path}: cannot read it as Parquet ({error})") from None
        names = parquet.schema_arrow.names
        if text_field not in names:
            raise CorpusError(f"{path}: no column {text_field!r} (it has {names}); name the "
                              f"texts' column with --text-field")
        columns = [name for name in (id_field, text_field) if name in names]
        number = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            for row in batch.to_pylist():
                number += 1
                yield path, number, row


def _open(path, mode):
    try:
        return open(path, mode)
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror or error}") from None


def count_rows(fmt, files) -> int:
    """How many rows the corpus holds (its non-empty lines, or Parquet's row counts)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    rows = 0
    for path in files:
        with _open(path, "rb") as file:
            rows += sum(1 for line in file if line.strip())
    return rows


def jsonl_lines(ids, columns, names) -> list[str]:
    """The JSON Lines of rows {"id": ids[i], name: columns[name][i] for name in names}, each
    ending in a newline: the output format of a JSONL corpus's scores (token_logprobs as
    lists of floats)."""
    lines = []
    for i, row_id in enumerate(ids):
        row = {"id": row_id, **{name: columns[name][i] for name in names}}
        if row.get(TOKEN_LOGPROBS) is not None:
            row[TOKEN_LOGPROBS] = [float(logprob) for logprob in row[TOKEN_LOGPROBS]]
        lines.append(json.dumps(row) + "\n")
    return lines


def scores_table(ids, columns, names, id_type=None, *, name="the output"):
    """The pyarrow Table of the same rows, in the output format of a Parquet corpus's scores:
    id (of type id_type, else as Arrow infers it), tokens int64, token_logprobs
    list<float64>, the other columns float64, nulls where None. CorpusError naming `name`
    when the ids are of types one column cannot hold."""
    import pyarrow as pa

    types = {"tokens": pa.int64(), TOKEN_LOGPROBS: pa.list_(pa.float64())}
    try:
        arrays = [pa.array(ids, type=id_type)]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise CorpusError(f"{name}: the ids are of different types ({error}), which one "
                          f"Parquet column cannot hold; write JSONL instead") from None
    arrays += [pa.array(columns[column], type=types.get(column, pa.float64()))
               for column in names]
    return pa.Table.from_arrays(arrays, names=["id", *names])


class ScoresWriter:
    """Writes rows of (id, score columns) to `path` (.jsonl or .parquet), under a temporary name
    renamed on a clean exit and removed on an error. As a context manager; `write(ids,
    columns)` takes a batch: ids [n] and score_columns' lists."""

    def __init__(self, path, token_logprobs=False):
        self.path = Path(path)
        self.format = corpus_format(self.path)
        self.columns = (*SCORE_COLUMNS, *((TOKEN_LOGPROBS,) if token_logprobs else ()))
        self._temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._file = None
        self._parquet = None

    def __enter__(self):
        try:
            self._file = open(self._temporary, "wb")
        except OSError as error:
            raise CorpusError(f"cannot write {self.path}: {error.strerror or error}") from None
        return self

    def write(self, ids, columns):
        """Append one batch of rows: `ids` and the lists of score_columns."""
        try:
            if self.format == "jsonl":
                self._write_jsonl(ids, columns)
            else:
                self._write_parquet(ids, columns)
        except OSError as error:
            raise CorpusError(f"cannot write {self.path}: {error.strerror or error}") from None

    def _write_jsonl(self, ids, columns):
        self._file.write("".join(jsonl_lines(ids, columns, self.columns)).encode("utf-8"))

    def _write_parquet(self, ids, columns):
        id_type = None if self._parquet is None else self._parquet.schema.field("id").type
        table = scores_table(ids, columns, self.columns, id_type, name=self.path)
        if self._parquet is None:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self._file, table.schema)
        self._parquet.write_table(table)

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None and self.format == "parquet" and self._parquet is None:
                self.write([], {name: [] for name in self.columns})   # an empty corpus
            if self._parquet is not None:
                self._parquet.close()
            self._file.close()
            if kind is None:
                os.replace(self._temporary, self.path)
        finally:
            if self._temporary.exists():
                self._temporary.unlink()


def score_locally(model, input_path, output_path, *, text_field="text", id_field="id",
                  stride=None, token_logprobs=False, progress=None) -> int:
    """Score the corpus at input_path with `model` (a GPT2) into output_path, BATCH_ROWS rows
    at a time; progress(rows, total), if given, after each batch. Returns the rows written."""
    fmt, files = corpus_files(input_path)
    total = count_rows(fmt, files)
    rows = 0
    with ScoresWriter(output_path, token_logprobs) as writer:
        batch = []
        for row in read_rows(fmt, files, text_field, id_field):
            batch.append(row)
            if len(batch) == BATCH_ROWS:
                rows += _score_batch(model, writer, batch, stride, token_logprobs)
                batch = []
                if progress is not None:
                    progress(rows, total)
        rows += _score_batch(model, writer, batch, stride, token_logprobs)
    if progress is not None:
        progress(rows, total)
    return rows


def _score_batch(model, writer, batch, stride, token_logprobs) -> int:
    ids = [row_id for row_id, _ in batch]
    writer.write(ids, score_columns(model, [text for _, text in batch], stride, token_logprobs))
    return len(batch)
