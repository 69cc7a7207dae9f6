"""`gpt2numba score --input CORPUS --output SCORES`: a corpus scored row by row, locally with a
progress bar or on a Ray cluster with --ray (gpt2numba/corpus.py, corpus_ray.py).

`corpus_options` adds the options to the `score` command and runs the corpus job when --input
is given; without it, `score` scores its FILES as before.
"""

import functools
import logging
import re
import sys
import time

import click

from gpt2numba.cli.common import RunError, compile_kernels, progress_bar

PROGRESS_SECONDS = 5   # how often progress is reported when stderr is not a terminal
RAY_EXTRA = "pip install 'gpt2numba[ray]'"


def corpus_options(command):
    """Decorate the `score` command with the corpus options (--input, --output, --text-field,
    --id-field, --ray, --actors, --cpus-per-actor): with --input, the corpus job runs instead
    of the command's own body."""
    @functools.wraps(command)
    def score_files_or_corpus(*, input_path, output_path, text_field, id_field, ray_address,
                              actors, cpus_per_actor, **options):
        if input_path is None:
            for name, value in (("--output", output_path), ("--ray", ray_address),
                                ("--actors", actors)):
                if value is not None:
                    raise click.UsageError(f"{name} goes with --input CORPUS")
            return command(**options)
        _check_corpus_job(options, output_path)
        job = dict(text_field=text_field, id_field=id_field, stride=options["stride"],
                   token_logprobs=options["per_token"])
        if ray_address is None:
            return _score_locally(options["model"], options["revision"], input_path,
                                  output_path, job)
        return _score_on_ray(ray_address, options["model"], options["revision"], input_path,
                             output_path, dict(job, actors=actors, cpus_per_actor=cpus_per_actor))

    for option in reversed(_OPTIONS):
        score_files_or_corpus = option(score_files_or_corpus)
    return score_files_or_corpus


def _check_corpus_job(options, output_path):
    """UsageError for an --input job with FILES, options that go with FILES only, or no
    --output."""
    if options["files"]:
        raise click.UsageError("give FILES or --input CORPUS, not both")
    for name, value in (("--top-k", options["top_k"]), ("--per-word", options["per_word"]),
                        ("--json", options["as_json"])):
        if value:
            raise click.UsageError(f"{name} goes with FILES, not --input CORPUS")
    if output_path is None:
        raise click.UsageError("--input needs --output SCORES (a .jsonl or .parquet file)")


_OPTIONS = (
    click.option("--input", "input_path", metavar="CORPUS",
                 help="Score a corpus: a JSONL or Parquet file, or a folder of them (with --ray, "
                      "anything Ray Data reads). One output row per input row."),
    click.option("--output", "output_path", metavar="SCORES",
                 help="With --input: the .jsonl or .parquet file of the scores: id, tokens, nll, "
                      "perplexity, bits_per_byte (and token_logprobs with --per-token). With "
                      "--ray, a folder or URI (scores.parquet/, s3://bucket/scores.jsonl) is "
                      "written by Ray Data as part files, part-00000000... in input order, its "
                      "format from its name; it must be new or empty."),
    click.option("--text-field", default="text", show_default=True, metavar="NAME",
                 help="With --input: the field of each row that holds its text."),
    click.option("--id-field", default="id", show_default=True, metavar="NAME",
                 help="With --input: the field copied as each output row's id (its position "
                      "where a row has none)."),
    click.option("--ray", "ray_address", metavar="ADDRESS",
                 help="With --input: score on the Ray cluster at ADDRESS ('auto': the running "
                      "one), a pool of actors each holding the model."),
    click.option("--actors", type=click.IntRange(min=1), metavar="N",
                 show_default="the cluster's CPUs / --cpus-per-actor",
                 help="With --ray: how many actors score at once."),
    click.option("--cpus-per-actor", type=click.IntRange(min=1), default=1, show_default=True,
                 metavar="K", help="With --ray: the CPUs (Numba threads) of each actor."),
)


def _score_locally(model, revision, input_path, output_path, job):
    from gpt2numba.corpus import (
        CorpusError,
        corpus_files,
        corpus_format,
        is_folder_output,
        score_locally,
    )

    if is_folder_output(output_path):
        raise RunError(f"{output_path}: a folder or URI is written by Ray Data, as part files; "
                       f"add --ray ADDRESS, or name one .jsonl or .parquet file")
    try:   # before the model loads: a bad path fails fast
        corpus_files(input_path)
        corpus_format(output_path)
    except CorpusError as error:
        raise RunError(str(error)) from None
    gpt = _load(model, revision)
    compile_kernels()
    progress = _RowProgress()
    try:
        rows = score_locally(gpt, input_path, output_path, progress=progress, **job)
    except CorpusError as error:
        raise RunError(str(error)) from None
    except ImportError as error:   # pyarrow, for Parquet
        raise RunError(f"Parquet files need {error.name}: {RAY_EXTRA}") from None
    progress.finish(rows, output_path)


def _score_on_ray(address, model, revision, input_path, output_path, job):
    try:
        import ray
    except ImportError:
        raise RunError(f"--ray needs Ray: {RAY_EXTRA}") from None
    from gpt2numba.corpus import CorpusError, corpus_format, folder_format, is_folder_output
    from gpt2numba.corpus_ray import score_on_ray

    try:
        (folder_format if is_folder_output(output_path) else corpus_format)(output_path)
    except CorpusError as error:
        raise RunError(str(error)) from None
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise RunError(f"cannot connect to the Ray cluster at {address}: {error} (start one "
                       f"with `ray start --head`, or pass the address of yours)") from None
    # Ray Data logs an actor's failure with its traceback; the command says it in one line.
    # Its logging is configured as it is imported: after that.
    import ray.data  # noqa: F401

    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    start = time.perf_counter()
    try:
        rows = score_on_ray(model, input_path, output_path, revision=revision, **job)
    except CorpusError as error:
        raise RunError(str(error)) from None
    except ray.exceptions.RayError as error:   # an actor failed: a model it cannot load, say
        raise RunError(f"the job failed on the Ray cluster: {_root_cause(error)}") from None
    finally:
        ray.shutdown()
    click.echo(f"gpt2numba: scored {rows} rows on Ray in {time.perf_counter() - start:.1f} s "
               f"into {output_path}", err=True)


def _root_cause(error) -> str:
    """What the error raised in an actor said (a WeightsError's sentence, say), found in the
    text of `error`, a Ray error that carries its traceback: the last line of the form
    `SomeError: message`, without the traceback."""
    lines = [line.strip() for line in str(error).splitlines()]
    causes = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\w*: ", line)]
    return causes[-1].split(": ", 1)[1] if causes else type(error).__name__


def _load(model, revision):
    from gpt2numba.model import GPT2
    from gpt2numba.weights import WeightsError

    try:
        return GPT2.from_pretrained(model, revision=revision)
    except WeightsError as error:
        raise RunError(str(error)) from None


class _RowProgress:
    """Rows scored of the corpus on stderr: a bar redrawn in place on a terminal, else a line
    every PROGRESS_SECONDS; `finish` says how many rows went where, and how fast."""

    def __init__(self):
        self.start = time.perf_counter()
        self.last_line = self.start
        self.terminal = sys.stderr is not None and sys.stderr.isatty()

    def __call__(self, rows, total):
        now = time.perf_counter()
        rate = rows / max(now - self.start, 1e-9)
        if self.terminal and total:
            click.echo(f"\rgpt2numba: [{progress_bar(rows, total)}] {rows}/{total} rows, "
                       f"{rate:.1f} rows/s", err=True, nl=False)
        elif now - self.last_line >= PROGRESS_SECONDS and rows < total:
            click.echo(f"gpt2numba: {rows}/{total} rows, {rate:.1f} rows/s", err=True)
            self.last_line = now

    def finish(self, rows, output_path):
        seconds = time.perf_counter() - self.start
        end = "\r\x1b[K" if self.terminal else ""
        click.echo(f"{end}gpt2numba: scored {rows} rows in {seconds:.1f} s "
                   f"({rows / max(seconds, 1e-9):.1f} rows/s) into {output_path}", err=True)
