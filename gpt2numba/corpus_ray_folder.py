"""Scores written by Ray Data: a folder of part files, on local disk or object storage.

An --output that is a folder (corpus.is_folder_output) is written by Ray Data's write tasks,
one part file per write task, named part-00000000.jsonl (or .parquet), part-00000001, ... in
the input's order (the job preserves it): read in the order of their names, the parts give
the rows in the input's order. Their rows are those one output file would hold
(corpus.jsonl_lines, corpus.scores_table): the same columns, names and types.

- A local folder, or a file:// URI, is written by write tasks pinned to this process's node
  (on a cluster, only its disk is certain to be the one the caller reads), into a temporary
  sibling folder that is renamed when complete and removed on a failure.
- Any other URI (s3://, gs://, ...) is written where the write tasks run, into the folder
  itself (object storage cannot rename a folder); its part files are deleted on a failure.
A folder that exists and holds anything is refused, so the parts of two runs never mix.
"""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs
import ray
from ray.data import SaveMode
from ray.data.aggregate import Count
from ray.data.datasource import BlockBasedFileDatasink, FilenameProvider
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gpt2numba.corpus import CorpusError, folder_format, jsonl_lines, scores_table

JSONL_COLUMN = "jsonl"


def numbered(dataset, id_field, position_column):
    """(dataset, its rows): `dataset` with the column `position_column` (each row's position
    in the input, from 0) where some row has no `id_field`, else as it is. Ray Data has no
    row numbers: where the input has the id column, its ids and rows are counted (a first
    read); only where ids are missing is the input read into the object store, its blocks (in
    the input's order) counted and numbered."""
    if id_field in dataset.schema().names:
        found = dataset.aggregate(Count(alias_name="rows"),
                                  Count(on=id_field, ignore_nulls=True, alias_name="ids"))
        if found["ids"] == found["rows"]:
            return dataset, found["rows"]
    tables = dataset.to_arrow_refs()
    if not tables:   # an empty corpus
        return dataset, 0
    sizes = ray.get([_num_rows.remote(table) for table in tables])
    firsts = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
    return ray.data.from_arrow_refs([_with_positions.remote(table, int(first), position_column)
                                     for table, first in zip(tables, firsts)]), sum(sizes)


@ray.remote(num_cpus=0)
def _num_rows(table) -> int:
    return table.num_rows


@ray.remote(num_cpus=0)
def _with_positions(table, first, position_column):
    """`table` (pyarrow) with the column `position_column`: first, first + 1, ..."""
    positions = np.arange(first, first + table.num_rows, dtype=np.int64)
    return table.append_column(position_column, pa.array(positions))


class PartNames(FilenameProvider):
    """part-NNNNNNNN.<format>, numbered by the write task: in the input's order."""

    def get_filename_for_task(self, write_uuid, task_index):
        """The name of write task `task_index`'s part file."""
        return f"part-{task_index:08d}.{self.file_format}"


class JsonlScoresSink(BlockBasedFileDatasink):
    """Writes blocks of one column JSONL_COLUMN, each row a line of corpus.jsonl_lines
    (rendered before the write: a JSONL output's ids may be of several types, which one Arrow
    column cannot hold)."""

    def write_block_to_file(self, block, file):
        """Append `block` (a Ray BlockAccessor) to `file` (a pyarrow output stream)."""
        file.write("".join(block.to_arrow().column(JSONL_COLUMN).to_pylist()).encode("utf-8"))


class FolderOutput:
    """The folder `output` (a path or a URI) that score rows are written into: checked when
    built (CorpusError for a name without a format, an unknown scheme, a file, a non-empty
    folder), written by `write(dataset)`."""

    def __init__(self, output):
        self.output = str(output)
        self.format = folder_format(self.output)
        try:
            if "://" in self.output:
                self.filesystem, self.path = pyarrow.fs.FileSystem.from_uri(self.output)
            else:
                self.filesystem, self.path = pyarrow.fs.LocalFileSystem(), os.path.abspath(output)
            self._check_empty()
        except (pyarrow.ArrowInvalid, OSError) as error:
            raise CorpusError(f"cannot write {self.output}: {error}") from None
        self.local = isinstance(self.filesystem, pyarrow.fs.LocalFileSystem)

    def _check_empty(self):
        info = self.filesystem.get_file_info(self.path)
        if info.type == pyarrow.fs.FileType.File:
            raise CorpusError(f"{self.output}: a file, not a folder; name a new folder for the "
                              f"part files (or a file path without a trailing / for one file)")
        selector = pyarrow.fs.FileSelector(self.path, allow_not_found=True)
        if self.filesystem.get_file_info(selector):
            raise CorpusError(f"{self.output}: the folder exists and is not empty; remove it or "
                              f"name a new one (the parts of two runs are never mixed)")

    def rows(self, ids, columns):
        """The block of output rows of `ids` and the score `columns` (lists), in the form
        `write` takes: a pyarrow Table."""
        if self.format == "parquet":
            return scores_table(ids, columns, list(columns), name=self.output)
        return pa.table({JSONL_COLUMN: jsonl_lines(ids, columns, list(columns))})

    def write(self, dataset):
        """Write `dataset`, of blocks made by `rows`, as the folder's part files."""
        # Write tasks only copy rows: they take no CPU, which the scoring actors may all hold.
        options = {"num_cpus": 0}
        if self.local:
            node = ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        with self._target() as target:
            names = PartNames(file_format=self.format)
            if self.format == "parquet":
                # Ray's Parquet sink wants the write's UUID in the names unless it may
                # overwrite: the folder is new or empty (checked), so it may.
                dataset.write_parquet(target, filename_provider=names, mode=SaveMode.OVERWRITE,
                                      ray_remote_args=options)
            else:
                dataset.write_datasink(JsonlScoresSink(target, filename_provider=names),
                                       ray_remote_args=options)

    @contextmanager
    def _target(self):
        """The URI Ray Data writes into; the folder is complete at the block's clean end, and
        holds no part file after a failure."""
        if not self.local:
            try:
                yield self.output
            except BaseException:
                self.filesystem.delete_dir_contents(self.path, missing_dir_ok=True)
                raise
            return
        final = Path(self.path)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.partial")
        try:
            temporary.mkdir(parents=True)
        except OSError as error:
            raise CorpusError(f"cannot write {self.output}: {error.strerror or error}") from None
        try:
            yield str(temporary)
            if final.is_dir():
                final.rmdir()   # empty: checked when built
            os.replace(temporary, final)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
