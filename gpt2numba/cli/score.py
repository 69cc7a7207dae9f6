"""`gpt2numba score`: tokens, log-likelihood, perplexity and bits per byte of texts, per file and
in total; per token (with ranks, entropies and top-k) or per word on demand."""

import json
import math
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
from gpt2numba.cli.corpus import corpus_options

PROGRESS_SECONDS = 5     # how often `score` reports progress when stderr is not a terminal


@click.command(short_help="Score texts: log-likelihood, perplexity, bits per byte.")
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
              help="Print every scored token with its log-probability, rank and the entropy of "
                   "the prediction: TSV, or arrays in --json.")
@click.option("--top-k", type=click.IntRange(1, 20), metavar="K",
              help="With --per-token: also the K likeliest tokens at each position and their "
                   "log-probabilities; 1..20.")
@click.option("--per-word", is_flag=True,
              help="Print every word (whitespace-separated) with its log-probability, corrected "
                   "for where the word ends, and the plain sum of its tokens': TSV, or a list "
                   "in --json.")
@corpus_options
def score(files, model, revision, stride, as_json, per_token, top_k, per_word):
    """Score texts: tokens, negative log-likelihood (nats), perplexity and bits per byte.

    Each FILE ('-' = stdin, the default) is one UTF-8 text of at most 16 MiB. Every token but
    the first is scored once, given the tokens before it in windows of n_positions tokens that
    start every --stride tokens. Prints a row per file and, for several files, the total
    (perplexity of the corpus: exp(total nll / total tokens)). With --json, --per-token or
    --per-word, stdout carries only those and the table goes to stderr. A file that cannot be
    scored is named on stderr with the reason, the others are scored all the same, and the
    exit status is then 2 (a file cannot be read as text) or 1 (a text of fewer than 2
    tokens). Example:

    \b
        gpt2numba score --stride 512 chapter1.txt chapter2.txt
        gpt2numba score --per-token --top-k 5 essay.txt > tokens.tsv
        gpt2numba score --per-word essay.txt > words.tsv
        gpt2numba score --input corpus.jsonl --output scores.parquet [--ray auto]
    """
    from gpt2numba.model import GPT2
    from gpt2numba.weights import WeightsError

    _check_views(as_json, per_token, top_k, per_word)
    sources = files or ("-",)
    if sources.count("-") > 1:
        raise click.BadParameter("stdin ('-') can be read only once", param_hint="'[FILES]...'")
    texts, status = _read_texts(sources)  # before the model loads: a bad file fails fast
    if texts:
        try:
            gpt = GPT2.from_pretrained(model, revision=revision)
        except WeightsError as error:
            raise RunError(str(error)) from None
        views = _Views(as_json, per_token, top_k, per_word)
        status = max(status, _print_scores(gpt, texts, stride, views))
    if status:
        sys.exit(status)


def _check_views(as_json, per_token, top_k, per_word):
    """A UsageError for options that do not go together."""
    if top_k and not per_token:
        raise click.UsageError("--top-k adds columns to --per-token: give --per-token too")
    if per_token and per_word and not as_json:
        raise click.UsageError("--per-token and --per-word print two different tables: give one, "
                               "or add --json for both in one record per file")


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


def _print_scores(gpt, texts, stride, views):
    """Score each text and print its row (and its JSON or TSV: views), then the total of the
    table. Returns the exit status: 1 if a text had too few tokens to score (named on stderr),
    else 0."""
    table = _ScoreTable([printable(name) for name, _ in texts], to_stderr=views.any)
    status = 0
    for name, text in texts:
        ids = gpt.tokenizer.encode(text)
        result = _score(gpt, name, ids, stride, views)
        if result is None:
            status = RunError.exit_code
            continue
        table.add(printable(name), result)
        views.add(gpt.tokenizer, name, ids, result)
    table.finish()
    return status


def _score(gpt, name, ids, stride, views):
    """gpt.score_ids(ids) with the details the views need, with progress on stderr for a text
    of several windows. None, after its error line, for a text the library refuses (too
    short); a bad stride is --stride's."""
    from gpt2numba.errors import ArgumentError

    several_windows = len(ids) > gpt.config.n_positions + 1
    progress = _ScoreProgress(printable(name)) if several_windows else None
    try:
        result = gpt.score_ids(ids, stride, details=views.details, top_k=views.top_k,
                               progress=progress)
    except ArgumentError as error:
        if error.argument == "stride":
            raise click.BadParameter(str(error), param_hint="'--stride'") from None
        error_line(f"{name}: {error}")
        return None
    if progress is not None:
        progress.finish()
    return result


class _Views:
    """What `score` prints on stdout besides the table: one JSON record per file (--json), or
    --per-token's or --per-word's TSV."""

    def __init__(self, as_json, per_token, top_k, per_word):
        self.as_json, self.per_token, self.per_word = as_json, per_token, per_word
        self.top_k = top_k or 0
        self.any = as_json or per_token or per_word
        self.details = per_token or per_word
        self.tokens_tsv = _TokensTsv(self.top_k)
        self.words_tsv = _WordsTsv()

    def add(self, tokenizer, name, ids, result):
        if self.as_json:
            write(json.dumps(self._record(name, ids, result)) + "\n")
        elif self.per_token:
            self.tokens_tsv.add(tokenizer, name, ids, result)
        elif self.per_word:
            self.words_tsv.add(name, result)

    def _record(self, name, ids, result):
        record = {"file": printable(name), "tokens": result.tokens, "nll": result.nll,
                  "perplexity": result.perplexity, "bits_per_byte": result.bits_per_byte}
        if self.per_token:
            details = result.details
            record.update(ids=ids[1:], token_logprobs=result.token_logprobs.tolist(),
                          ranks=details.ranks.tolist(), entropies=details.entropies.tolist())
            if self.top_k:
                record.update(top_ids=details.top_ids.tolist(),
                              top_logprobs=details.top_logprobs.tolist())
        if self.per_word:
            record["words"] = [{"word": word.text, "logprob": _json_number(word.logprob),
                                "plain_sum": _json_number(word.plain_sum),
                                "tokens": list(word.tokens)} for word in result.words()]
        return record


def _json_number(value):
    """A float for JSON: None for NaN (a first word with no context), which JSON cannot hold."""
    return None if math.isnan(value) else value


class _TokensTsv:
    """--per-token's TSV on stdout: its header before the first text's tokens, then a line per
    scored token: its log-probability, rank and the prediction's entropy, and with --top-k the
    k likeliest tokens and their log-probabilities."""

    def __init__(self, top_k):
        self.top_k = top_k
        self.started = False

    def add(self, tokenizer, name, ids, result):
        if not self.started:
            alternatives = "".join(f"\ttop{r}\ttop{r}_logprob" for r in range(1, self.top_k + 1))
            write(f"file\tposition\tid\ttoken\tlogprob\trank\tentropy{alternatives}\n")
            self.started = True
        field = _tsv_field(os.fsencode(name))  # the name's bytes, UTF-8 or not
        details = result.details
        lines = []
        for t, token_id, logprob, rank, entropy, top_ids, top_logprobs in zip(
                range(1, len(ids)), ids[1:], result.token_logprobs.tolist(),
                details.ranks.tolist(), details.entropies.tolist(), details.top_ids.tolist(),
                details.top_logprobs.tolist()):
            alternatives = "".join(f"\t{_tsv_field(tokenizer.decode_bytes([i]))}\t{lp!r}"
                                   for i, lp in zip(top_ids, top_logprobs))
            lines.append(f"{field}\t{t}\t{token_id}\t"
                         f"{_tsv_field(tokenizer.decode_bytes([token_id]))}\t{logprob!r}\t"
                         f"{rank}\t{entropy!r}{alternatives}\n")
        write("".join(lines))


class _WordsTsv:
    """--per-word's TSV on stdout: its header, then a line per word: its number in the text,
    the word, its log-probability (end-of-word corrected), the plain sum of its tokens', and
    the token positions it spans (first, last)."""

    def __init__(self):
        self.started = False

    def add(self, name, result):
        if not self.started:
            write("file\tnumber\tword\tlogprob\tplain_sum\tfirst_token\tlast_token\n")
            self.started = True
        field = _tsv_field(os.fsencode(name))
        write("".join(f"{field}\t{k}\t{_tsv_field(word.text.encode('utf-8'))}\t"
                      f"{word.logprob!r}\t{word.plain_sum!r}\t{word.tokens[0]}\t"
                      f"{word.tokens[1] - 1}\n"
                      for k, word in enumerate(result.words(), start=1)))


def _tsv_field(data) -> str:
    """Bytes (a token's, a file name's) as a TSV field: backslash, tab, newline and carriage
    return written as \\\\, \\t, \\n, \\r, and bytes that are not whole UTF-8 characters
    as \\xHH."""
    text = data.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _ScoreTable:
    """Per-file rows of tokens, nll, perplexity and bits per byte, then the corpus total for
    several files; the header comes with the first row (no table when no file is scored)."""

    def __init__(self, names, to_stderr):
        self.width = max(len("total"), len("file"), *map(len, names))
        self.to_stderr = to_stderr
        self.rows = 0
        self.tokens = 0
        self.nll = 0.0
        self.bytes = 0

    def _line(self, text):
        if self.to_stderr:
            click.echo(text, err=True)
        else:
            write(text + "\n")

    def _row(self, name, tokens, nll, scored_bytes):
        from gpt2numba.score import bits_per_byte, perplexity

        self._line(f"{name:<{self.width}}  {tokens:>10}  {nll:>16.4f}  "
                   f"{perplexity(nll, tokens):>12.6g}  {bits_per_byte(nll, scored_bytes):>9.4f}")

    def add(self, name, result):
        if not self.rows:
            self._line(f"{'file':<{self.width}}  {'tokens':>10}  {'nll':>16}  "
                       f"{'perplexity':>12}  {'bits/byte':>9}")
        self._row(name, result.tokens, result.nll, result.scored_bytes)
        self.rows += 1
        self.tokens += result.tokens
        self.nll += result.nll
        self.bytes += result.scored_bytes

    def finish(self):
        if self.rows > 1:
            self._row("total", self.tokens, self.nll, self.bytes)


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
