"""`gpt2numba score`: tokens, log-likelihood and perplexity of texts, per file and in total."""

import os
import sys
import time

import click

from gpt2numba.cli.common import (
    InputError,
    RunError,
    error_line,
    non_empty,
    printable,
    progress_bar,
    read_text,
    source_name,
    write,
)

PROGRESS_SECONDS = 5     # how often `score` reports progress when stderr is not a terminal


@click.command(short_help="Score texts: tokens, log-likelihood and perplexity.")
@click.argument("files", nargs=-1, metavar="[FILES]...")  # read by _read_texts, one by one
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=non_empty,
              help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, a Hub repo id or a folder.")
@click.option("--revision", metavar="REV", show_default="main", help="Branch, tag or commit sha.")
@click.option("--stride", metavar="N", type=click.IntRange(min=1),
              show_default="n_positions / 2, 512 for GPT-2",
              help="A window of n_positions tokens starts every N tokens; 1..n_positions. Smaller "
                   "gives each token more context and costs more.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per file (JSON Lines) instead of the table.")
@click.option("--per-token", is_flag=True,
              help="Print every scored token with its log-probability: TSV, or arrays in --json.")
def score(files, model, revision, stride, as_json, per_token):
    """Score texts: tokens, negative log-likelihood (nats) and perplexity of each file.

    Each FILE ('-' = stdin, the default) is one UTF-8 text of at most 16 MiB. Every token but
    the first is scored once, given the tokens before it in windows of n_positions tokens that
    start every --stride tokens. Prints a row per file and, for several files, the total
    (perplexity of the corpus: exp(total nll / total tokens)). With --json or --per-token,
    stdout carries only those and the table goes to stderr. A file that cannot be scored is
    named on stderr with the reason, the others are scored all the same, and the exit status
    is then 2 (a file cannot be read as text) or 1 (a text of fewer than 2 tokens). Example:

    \b
        gpt2numba score --stride 512 chapter1.txt chapter2.txt
        gpt2numba score --per-token essay.txt > tokens.tsv
    """
    from gpt2numba.model import GPT2
    from gpt2numba.weights import WeightsError

    sources = files or ("-",)
    if sources.count("-") > 1:
        raise click.BadParameter("stdin ('-') can be read only once", param_hint="'[FILES]...'")
    texts, status = _read_texts(sources)  # before the model loads: a bad file fails fast
    if texts:
        try:
            gpt = GPT2.from_pretrained(model, revision=revision)
        except WeightsError as error:
            raise RunError(str(error)) from None
        status = max(status, _print_scores(gpt, texts, stride, as_json, per_token))
    if status:
        sys.exit(status)


def _read_texts(sources):
    """([(name, text)] of the sources that can be read as text, exit status): one error line
    on stderr for each source that cannot, and status 2 (a bad argument) if there was one."""
    texts, status = [], 0
    for source in sources:
        try:
            texts.append((source_name(source), read_text(
                source, over_limit="the limit for a text to score; split it into smaller files")))
        except InputError as error:
            error_line(str(error))
            status = click.BadParameter.exit_code
    return texts, status


def _print_scores(gpt, texts, stride, as_json, per_token):
    """Score each text and print its row (or JSON, or TSV), then the total of the table. Returns
    the exit status: 1 if a text had too few tokens to score (named on stderr), else 0."""
    import json

    table = _ScoreTable([printable(name) for name, _ in texts], to_stderr=as_json or per_token)
    tokens_tsv = _TokensTsv()
    status = 0
    for name, text in texts:
        ids = gpt.tokenizer.encode(text)
        result = _score(gpt, name, ids, stride)
        if result is None:
            status = RunError.exit_code
            continue
        table.add(printable(name), result)
        if as_json:
            record = {"file": printable(name), "tokens": result.tokens, "nll": result.nll,
                      "perplexity": result.perplexity}
            if per_token:
                record.update(ids=ids[1:], token_logprobs=result.token_logprobs.tolist())
            write(json.dumps(record) + "\n")
        elif per_token:
            tokens_tsv.add(gpt.tokenizer, name, ids, result)
    table.finish()
    return status


def _score(gpt, name, ids, stride):
    """gpt.score_ids(ids), with progress on stderr for a text of several windows. None, after
    its error line, for a text the library refuses (too short); a bad stride is --stride's."""
    from gpt2numba.errors import ArgumentError

    several_windows = len(ids) > gpt.config.n_positions + 1
    progress = _ScoreProgress(printable(name)) if several_windows else None
    try:
        result = gpt.score_ids(ids, stride, progress=progress)
    except ArgumentError as error:
        if error.argument == "stride":
            raise click.BadParameter(str(error), param_hint="'--stride'") from None
        error_line(f"{name}: {error}")
        return None
    if progress is not None:
        progress.finish()
    return result


class _TokensTsv:
    """--per-token's TSV on stdout: its header before the first text's tokens, then a line per
    scored token."""

    def __init__(self):
        self.started = False

    def add(self, tokenizer, name, ids, result):
        if not self.started:
            write("file\tposition\tid\ttoken\tlogprob\n")
            self.started = True
        field = _tsv_field(os.fsencode(name))  # the name's bytes, UTF-8 or not
        write("".join(f"{field}\t{t}\t{token_id}\t"
                      f"{_tsv_field(tokenizer.decode_bytes([token_id]))}\t{logprob!r}\n"
                      for t, token_id, logprob in zip(range(1, len(ids)), ids[1:],
                                                      result.token_logprobs.tolist())))


def _tsv_field(data) -> str:
    """Bytes (a token's, a file name's) as a TSV field: backslash, tab, newline and carriage
    return written as \\\\, \\t, \\n, \\r, and bytes that are not whole UTF-8 characters
    as \\xHH."""
    text = data.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _ScoreTable:
    """Per-file rows of tokens, nll and perplexity, then the corpus total for several files; the
    header comes with the first row (no table when no file is scored)."""

    def __init__(self, names, to_stderr):
        self.width = max(len("total"), len("file"), *map(len, names))
        self.to_stderr = to_stderr
        self.rows = 0
        self.tokens = 0
        self.nll = 0.0

    def _line(self, text):
        if self.to_stderr:
            click.echo(text, err=True)
        else:
            write(text + "\n")

    def _row(self, name, tokens, nll):
        from gpt2numba.score import perplexity

        self._line(f"{name:<{self.width}}  {tokens:>10}  {nll:>16.4f}  "
                   f"{perplexity(nll, tokens):>12.6g}")

    def add(self, name, result):
        if not self.rows:
            self._line(f"{'file':<{self.width}}  {'tokens':>10}  {'nll':>16}  "
                       f"{'perplexity':>12}")
        self._row(name, result.tokens, result.nll)
        self.rows += 1
        self.tokens += result.tokens
        self.nll += result.nll

    def finish(self):
        if self.rows > 1:
            self._row("total", self.tokens, self.nll)


class _ScoreProgress:
    """Progress of one text on stderr: a bar redrawn in place on a terminal; elsewhere a line
    every PROGRESS_SECONDS. Ends with the tokens scored, the time and tokens/s."""

    def __init__(self, name):
        self.name = name
        self.start = time.perf_counter()
        self.last_line = self.start
        self.terminal = sys.stderr.isatty()
        self.scored = 0

    def __call__(self, scored, total):
        self.scored = scored
        now = time.perf_counter()
        rate = scored / max(now - self.start, 1e-9)
        if self.terminal:
            click.echo(f"\rgpt2numba: {self.name} [{progress_bar(scored, total)}] "
                       f"{scored}/{total} tokens, {rate:.0f} tokens/s", err=True, nl=False)
        elif now - self.last_line >= PROGRESS_SECONDS and scored < total:
            click.echo(f"gpt2numba: {self.name}: {scored}/{total} tokens, {rate:.0f} tokens/s",
                       err=True)
            self.last_line = now

    def finish(self):
        seconds = time.perf_counter() - self.start
        end = "\r\x1b[K" if self.terminal else ""
        click.echo(f"{end}gpt2numba: {self.name}: scored {self.scored} tokens in {seconds:.2f} s "
                   f"({self.scored / max(seconds, 1e-9):.0f} tokens/s)", err=True)
