"""The `gpt2numba` command line: parse options, call the library, print.

    gpt2numba run --prompt "Alan Turing theorized that" --max-new-tokens 40

`main` is the click group (the console script and `python -m gpt2numba` both call it); each
subcommand is a `@main.command()`. Every error ends the process with one line on stderr,
`gpt2numba: error: ...`, and exit status 2 for a bad command line (as click does), 1 for a
failure at run time (unknown model, offline and not cached, prompt too long), 130 for Ctrl-C.
"""

import math
import os
import sys
import time
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

PROMPT_LIMIT_BYTES = 16 * 2**20   # prompts are read up to this size: /dev/zero is not a prompt
DOWNLOAD_SHOWN_SECONDS = 0.1      # resolving a cached or local model takes milliseconds
SIGPIPE_EXIT = 141   # 128 + SIGPIPE: what a shell reports for a Unix tool cut off by `| head`
SIGINT_EXIT = 130    # 128 + SIGINT


class RunError(click.ClickException):
    """A failure at run time (exit status 1): the message is the whole story, no traceback."""


class _Interrupted(Exception):
    """Ctrl-C, carried past click's own handler, which prints an empty line before aborting."""


class _Group(click.Group):
    """A click group whose errors are one line, `gpt2numba: error: ...`, on stderr."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:  # a caller that wants click's exceptions gets them
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name or "gpt2numba", complete_var,
                                standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()  # `gpt2numba` alone: the help, as click shows it
            sys.exit(error.exit_code)
        except click.ClickException as error:
            message = error.format_message()
            if isinstance(error, click.UsageError) and error.ctx is not None:
                message += f" (see '{error.ctx.command_path} --help')"
            _error_line(message)
            sys.exit(error.exit_code)
        except (click.Abort, KeyboardInterrupt, _Interrupted):
            click.echo("gpt2numba: interrupted", err=True)
            sys.exit(SIGINT_EXIT)
        sys.exit(code if isinstance(code, int) else 0)


def _error_line(message):
    """Print `message` as the single line `gpt2numba: error: ...` on stderr."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    click.echo(f"gpt2numba: error: {text}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(package_name="gpt2numba", prog_name="gpt2numba")
def main():
    """GPT-2 inference in Python, every math primitive a Numba kernel.

    Loads OpenAI's GPT-2 (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, any Hub repo of
    the same architecture, or a local folder with config.json, model.safetensors, vocab.json
    and merges.txt) through the Hugging Face cache, and writes text. The first run compiles the
    kernels (Numba caches them on disk for the next runs). Example:

    \b
        gpt2numba run --prompt "Alan Turing theorized that" --max-new-tokens 40
    """


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and infinities (FloatRange lets nan through)."""

    def convert(self, value, param, ctx):
        """The float, or click's one-line failure naming the option."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def _non_empty(ctx, param, value):
    """A click callback: refuse an empty string (or an empty one among repeated values)."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v == "" for v in values):
        why = {"model": "pass a model name such as gpt2, or a folder ('.' for this one)",
               "stop": "an empty stop string would end generation before its first token; "
                       "pass some text"}[param.name]
        raise click.BadParameter(f"must not be empty: {why}", ctx=ctx, param=param)
    return value


SAMPLING_ONLY = ("top_k", "top_p", "seed")   # options that mean nothing in greedy decoding


@main.command(short_help="Continue a prompt with GPT-2 and print the text as it comes.")
@click.argument("prompt_argument", metavar="[PROMPT]", required=False)
@click.option("--prompt", metavar="TEXT",
              help="The text to continue (instead of PROMPT); '-' reads it from stdin. An empty "
                   "prompt conditions on <|endoftext|>, as GPT-2's unconditional samples do.")
@click.option("--prompt-file", metavar="PATH",
              type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True),
              help="Read the prompt from this UTF-8 file ('-' = stdin) instead. One trailing "
                   "newline is dropped. Prompts from stdin or a file: at most 16 MiB.")
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=_non_empty,
              help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, a Hub repo id "
                   "(owner/name) or a local folder.")
@click.option("--revision", metavar="REV", show_default="main",
              help="Branch, tag or commit sha of a Hub repo.")
@click.option("-n", "--max-new-tokens", metavar="N", type=click.IntRange(min=0), default=50,
              show_default=True, help="Tokens to generate at most.")
@click.option("-t", "--temperature", metavar="T", type=FiniteFloatRange(min=0), default=0.0,
              show_default=True,
              help="Sampling temperature; 0 is greedy (always the most likely token).")
@click.option("--top-k", metavar="K", type=click.IntRange(min=0), default=0, show_default=True,
              help="Sample only among the k most likely tokens; 0 is off. Needs -t > 0.")
@click.option("--top-p", metavar="P", type=FiniteFloatRange(0, 1, min_open=True), default=1.0,
              show_default=True,
              help="Nucleus sampling: only the most likely tokens whose probabilities add up to "
                   "p; 1 is off. Needs -t > 0.")
@click.option("--repetition-penalty", metavar="R",
              type=FiniteFloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Divide the logits of tokens already in the text by this (CTRL); 1 is off.")
@click.option("-s", "--seed", metavar="N", type=click.IntRange(min=0), show_default="random",
              help="Seed of the sampler: the same seed gives the same text. Needs -t > 0.")
@click.option("--stop", multiple=True, metavar="TEXT", callback=_non_empty,
              help="End generation when the continuation contains TEXT (not printed). "
                   "Repeatable.")
@click.option("--slide", is_flag=True,
              help="When prompt and continuation fill the context (n_positions, 1024 for GPT-2), "
                   "keep going on the last n_positions tokens instead of stopping.")
@click.option("--eos-stop/--no-eos-stop", default=True, show_default=True,
              help="Stop when the model writes <|endoftext|>.")
@click.option("--threads", metavar="N", type=click.IntRange(min=1),
              show_default="Numba's default, NUMBA_NUM_THREADS",
              help="Threads for the kernels; by default, the cores other processes leave idle.")
@click.option("--no-color", is_flag=True,
              help="Print the continuation without colour (also when NO_COLOR is set or "
                   "stdout is not a terminal).")
@click.pass_context
def run(ctx, prompt_argument, prompt, prompt_file, model, revision, max_new_tokens, temperature,
        top_k, top_p, repetition_penalty, seed, stop, slide, eos_stop, threads, no_color):
    """Continue a prompt with GPT-2 and print the text as it comes.

    Prints the prompt, then the continuation piece by piece (in cyan on a terminal), then a
    newline; a one-line summary of tokens, speed, download, load and compile times and why
    generation stopped goes to stderr. Greedy by default; --temperature above 0 samples.
    Example:

    \b
        gpt2numba run "Alan Turing theorized that" -n 40
        echo "The meaning of life is" | gpt2numba run --prompt - -t 0.8 -s 1
    """
    from gpt2numba import GPT2, ArgumentError, ContextFullWarning, WeightsError
    from gpt2numba.kernels._cache import recording_compiles
    from gpt2numba.sampling import NonFiniteLogitsError
    from gpt2numba.weights import resolve

    if prompt_argument is not None and (prompt is not None or prompt_file is not None):
        raise click.UsageError("pass the prompt once: as PROMPT, --prompt or --prompt-file")
    text = _read_prompt(prompt if prompt_argument is None else prompt_argument, prompt_file)
    _check_threads(threads)
    given = [name for name in SAMPLING_ONLY
             if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if given and temperature == 0:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        click.echo(f"gpt2numba: {options} {'has' if len(given) == 1 else 'have'} no effect in "
                   f"greedy decoding (temperature 0); add --temperature 0.8 (say) to sample",
                   err=True)

    with recording_compiles() as compiles:
        try:
            start = time.perf_counter()
            folder = resolve(model, revision=revision)
            download_seconds = time.perf_counter() - start
            load_start = time.time()
            gpt = GPT2.from_pretrained(folder, threads=threads)
            load_end = time.time()
        except (WeightsError, ValueError, OSError) as error:
            raise RunError(str(error)) from None

        n_positions = gpt.config.n_positions
        try:
            stream = gpt.stream(text, max_new_tokens, temperature=temperature, top_k=top_k,
                                top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
                                stop=stop, stop_at_eos=eos_stop, slide=slide)
        except ArgumentError as error:
            if error.argument == "prompt":
                raise RunError(f"{error}; shorten the prompt, or pass --slide to continue its "
                               f"last {n_positions} tokens") from None
            option = "--" + error.argument.replace("_", "-")
            raise click.BadParameter(str(error), param_hint=f"'{option}'") from None

        compile_kernels()
        color = _use_color(no_color)
        try:
            _write(text)
            generation_wall_start = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ContextFullWarning)  # said below, with --slide
                for piece in stream:
                    _write(click.style(piece, fg="cyan") if color else piece)
            _write("\n")
        except NonFiniteLogitsError as error:
            _write("\n")
            raise RunError(str(error)) from None
        except BrokenPipeError:  # `| head` closed the pipe: stop quietly
            _silence_stdout()
            sys.exit(SIGPIPE_EXIT)
        except OSError as error:  # /dev/full, a failing disk
            _silence_stdout()
            raise RunError(f"cannot write to stdout ({error.strerror or error}); check where "
                           f"the output goes") from None

    in_load = sum(max(0.0, min(end, load_end) - max(begin, load_start))
                  for begin, end in compiles)
    times = Phases(download_seconds, load_end - load_start - in_load, compiles)
    if stream.stop_reason == "context":
        click.echo(f"gpt2numba: {stream.context_full_message(slide='--slide')}", err=True)
    click.echo(summary_line(stream, times, generation_wall_start), err=True)


@main.command(short_help="Time import, load, JIT cold / cached / warm, tokens/s.")
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=_non_empty,
              help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, a Hub repo id or a folder.")
@click.option("--revision", metavar="REV", show_default="main", help="Branch, tag or commit sha.")
@click.option("--threads", metavar="N", type=click.IntRange(min=1),
              show_default="Numba's default, NUMBA_NUM_THREADS", help="Threads for the kernels.")
@click.option("--repeats", metavar="N", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs per warm forward (median, min and max are reported).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as JSON instead of a table.")
@click.option("--plot", metavar="FILE.png", type=click.Path(dir_okay=False, writable=True),
              help="Also draw the timings into this PNG (needs matplotlib).")
def bench(model, revision, threads, repeats, as_json, plot):
    """Time import, load, JIT cold / cached / warm forwards and generation.

    JIT cold is a fresh process with an empty Numba cache (compile included), JIT cached a
    fresh process with that cache populated; both use a temporary NUMBA_CACHE_DIR, so your own
    cache is not touched. Warm: one forward of 16, 128, 512 and 1024 tokens (last-row logits),
    and greedy generation of 64 tokens after a 16-token prompt (ids 1000..1015), no KV cache.
    Takes a minute or two (the cold start compiles every kernel). --plot draws cold, cached and
    warm times to the first token and the warm forward against tokens, beside transformers if
    it is installed (needs matplotlib: pip install 'gpt2numba[plot]'). Example:

    \b
        gpt2numba bench --model gpt2 --threads 2 --plot bench.png
    """
    from gpt2numba import WeightsError
    from gpt2numba.bench import format_report, run_benchmark

    if plot is not None:
        from gpt2numba.bench_plot import plot_report, require_matplotlib

        try:
            require_matplotlib()
        except ImportError as error:
            raise click.BadParameter(str(error), param_hint="'--plot'") from None
    _check_threads(threads)
    compiling = CompileProgress()

    def stage(line):
        compiling.finish()   # the cold process's compile, when it was shown
        click.echo(f"gpt2numba: {line}", err=True)

    try:
        report = run_benchmark(model, revision, threads, repeats, progress=stage,
                               compile_progress=compiling, before_warm=compile_kernels,
                               with_transformers=plot is not None)
    except (WeightsError, RuntimeError) as error:
        raise RunError(str(error)) from None
    click.echo(report.to_json() if as_json else format_report(report))
    if plot is not None:
        try:
            plot_report(report, plot)
        except OSError as error:
            raise RunError(f"cannot write {plot}: {error.strerror or error}") from None
        click.echo(f"gpt2numba: plot written to {plot}", err=True)


@main.command(short_help="Fetch a model and compile the kernels, for offline use.")
@click.argument("name")
@click.option("--revision", metavar="REV", show_default="main", help="Branch, tag or commit sha.")
def download(name, revision):
    """Fetch a model into the Hugging Face cache, compile the kernels, print the model's folder.

    NAME is gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2 or a Hub repo id. Afterwards
    the model works offline (HF_HUB_OFFLINE=1), and the kernels are in Numba's cache (beside
    the package, or NUMBA_CACHE_DIR), so the first run does not compile: `RUN gpt2numba
    download gpt2` in a container image makes it start warm. Example:

    \b
        gpt2numba download gpt2-medium
    """
    from gpt2numba import WeightsError
    from gpt2numba.weights import resolve

    try:
        folder = resolve(name, revision=revision)
    except WeightsError as error:
        raise RunError(str(error)) from None
    compile_kernels()
    click.echo(folder)


def _read_prompt(prompt, prompt_file) -> str:
    """The prompt text from --prompt, --prompt - (stdin) or --prompt-file; UsageError if not one.

    stdin and files are read up to PROMPT_LIMIT_BYTES + 1 bytes, so that /dev/zero or an endless
    pipe is refused once past the limit instead of filling memory.
    """
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("pass either --prompt or --prompt-file, not both")
    if prompt is None and prompt_file is None:
        raise click.UsageError("no prompt: pass PROMPT, --prompt - (read stdin) or "
                               "--prompt-file PATH")
    if prompt is not None and prompt != "-":
        return prompt
    source = prompt_file if prompt_file is not None else "-"
    option = "'--prompt-file'" if prompt_file is not None else "'--prompt'"
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            if sys.stdin is not None and sys.stdin.isatty():
                click.echo("gpt2numba: type the prompt, then press Ctrl-D on a line of its own "
                           "to end it (Ctrl-Z then Enter on Windows)", err=True)
            data = sys.stdin.buffer.read(PROMPT_LIMIT_BYTES + 1) if sys.stdin is not None else b""
        else:
            with open(source, "rb") as file:
                data = file.read(PROMPT_LIMIT_BYTES + 1)
    except OSError as error:
        raise click.BadParameter(f"cannot read {name}: {error.strerror or error}",
                                 param_hint=option) from None
    if len(data) > PROMPT_LIMIT_BYTES:
        raise click.BadParameter(f"{name} holds more than {PROMPT_LIMIT_BYTES // 2**20} MiB, the "
                                 f"limit for a prompt; pass a shorter text", param_hint=option)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise click.BadParameter(f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at "
                                 f"offset {error.start})", param_hint=option) from None
    return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")  # final newline


def _check_threads(threads):
    """A BadParameter unless `threads` is None or within the range Numba allows.

    The count itself goes to the model (GPT2.threads), never to numba.set_num_threads here:
    that would start Numba's threads before the kernels choose the threading layer.
    """
    if threads is None:
        return
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if threads > most:
        raise click.BadParameter(f"{threads} is more than the {most} threads Numba can use here "
                                 f"(NUMBA_NUM_THREADS={most}); pass 1..{most}",
                                 param_hint="'--threads'")


def _write(text):
    """Write `text` to stdout as it is (click.echo would strip escapes in it) and flush."""
    if sys.stdout is None:  # Python's stdout when the process started with descriptor 1 closed
        raise RunError("stdout is closed, so the text cannot be printed; redirect it to a file "
                       "or to /dev/null")
    sys.stdout.write(text)
    sys.stdout.flush()


def _use_color(no_color) -> bool:
    """Colour only on a terminal, without --no-color, and without NO_COLOR (no-color.org)."""
    return (not no_color and not os.environ.get("NO_COLOR") and sys.stdout is not None
            and sys.stdout.isatty())


def _silence_stdout():
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class Phases:
    """How long a run spent before generating: download (resolving the model name), load and
    compile. `compiles`: Numba's (start, end) intervals (time.time()), from recording_compiles,
    over the whole run; `load_seconds` excludes those that fell in the load."""

    def __init__(self, download_seconds, load_seconds, compiles):
        self.download_seconds = download_seconds
        self.load_seconds = load_seconds
        self.compiles = compiles


def summary_line(stream, phases, wall_start) -> str:
    """The stderr footer, e.g. `gpt2numba: 50 tokens in 2.31 s (21.6 tokens/s), first token
    0.35 s, download 4.0 s, load 0.8 s, compile 12.3 s, stopped: max_new_tokens reached`.

    `stream` is the finished TextStream, `phases` the Phases before it. Generation and
    first-token times exclude the time Numba spent compiling; the compile time is its own item,
    or "kernels cached" when nothing was compiled. The download appears when resolving the
    model took DOWNLOAD_SHOWN_SECONDS or more (a cached or local model takes milliseconds).
    `wall_start` is time.time() when the generation began.
    """
    intervals = phases.compiles
    compiled = sum(end - start for start, end in intervals)
    in_generation = sum(end - start for start, end in intervals if start >= wall_start)
    n = len(stream.new_ids)
    seconds = max(stream.seconds - in_generation, 0.0)
    parts = [f"{n} token{'' if n == 1 else 's'} in {seconds:.2f} s"
             + (f" ({n / seconds:.1f} tokens/s)" if n and seconds > 0 else "")]
    if stream.first_token_seconds is not None:
        first_end = wall_start + stream.first_token_seconds
        before_first = sum(max(0.0, min(end, first_end) - start) for start, end in intervals
                           if start >= wall_start)
        parts.append(f"first token {max(stream.first_token_seconds - before_first, 0.0):.2f} s")
    if phases.download_seconds >= DOWNLOAD_SHOWN_SECONDS:
        parts.append(f"download {phases.download_seconds:.1f} s")
    parts.append(f"load {phases.load_seconds:.1f} s")
    parts.append(f"compile {compiled:.1f} s" if intervals else "kernels cached")
    parts.append(f"stopped: {stream.stopped_because}")
    return "gpt2numba: " + ", ".join(parts)


class CompileProgress:
    """Progress of compiling kernel k of n on stderr: a bar redrawn in place on a terminal,
    else a line per kernel; `finish` says how long it took."""

    def __init__(self):
        self.terminal = sys.stderr is not None and sys.stderr.isatty()
        self.start = None

    def __call__(self, k, n, name):
        """Show that kernel k of n, `name`, is being compiled."""
        from gpt2numba.compiling import COMPILE_ESTIMATE_SECONDS

        if self.start is None:
            self.start = time.perf_counter()
            if not self.terminal:
                click.echo(f"gpt2numba: compiling kernels (first run only, about "
                           f"{COMPILE_ESTIMATE_SECONDS} s)...", err=True)
        if self.terminal:
            filled = PROGRESS_BAR_WIDTH * (k - 1) // n
            bar = "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)
            click.echo(f"\r\x1b[Kgpt2numba: compiling kernels (first run only) [{bar}] "
                       f"{k}/{n} {name}", err=True, nl=False)
        else:
            click.echo(f"gpt2numba: compiling kernel {k} of {n} ({name})", err=True)

    def finish(self):
        """The closing line, once something was shown."""
        if self.start is not None:
            end = "\r\x1b[K" if self.terminal else ""
            click.echo(f"{end}gpt2numba: compiled the kernels in "
                       f"{time.perf_counter() - self.start:.1f} s (cached for the next runs)",
                       err=True)
            self.start = None


def compile_kernels():
    """gpt2numba.compile(), with CompileProgress when any kernel is not in Numba's cache (else
    it loads them from the cache in a fraction of a second, silently)."""
    from gpt2numba.compiling import KERNELS, compile
    from gpt2numba.kernels._cache import all_cached

    if all_cached(KERNELS):
        compile()
        return
    progress = CompileProgress()
    compile(progress)
    progress.finish()


PROGRESS_SECONDS = 5     # how often `score` reports progress when stderr is not a terminal
PROGRESS_BAR_WIDTH = 30


@main.command(short_help="Score texts: tokens, log-likelihood and perplexity.")
@click.argument("files", nargs=-1, metavar="[FILES]...",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=_non_empty,
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

    Each FILE ('-' = stdin, the default) is one UTF-8 text. Every token but the first is scored
    once, given the tokens before it in windows of n_positions tokens that start every --stride
    tokens. Prints a row per file and, for several files, the total (perplexity of the corpus:
    exp(total nll / total tokens)). With --json or --per-token, stdout carries only those and
    the table goes to stderr. Example:

    \b
        gpt2numba score --stride 512 chapter1.txt chapter2.txt
        gpt2numba score --per-token essay.txt > tokens.tsv
    """
    import json

    from gpt2numba.model import GPT2
    from gpt2numba.score import check_stride, ids_to_score
    from gpt2numba.weights import WeightsError

    sources = files or ("-",)
    if sources.count("-") > 1:
        raise click.BadParameter("stdin ('-') can be read only once", param_hint="'[FILES]...'")
    texts = [_read_text(source) for source in sources]
    try:
        gpt = GPT2.from_pretrained(model, revision=revision)
    except (WeightsError, ValueError, OSError) as error:
        raise RunError(str(error)) from None
    try:
        stride = check_stride(stride, gpt.config.n_positions)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--stride'") from None
    all_ids = []
    for source, text in zip(sources, texts):
        try:
            all_ids.append(ids_to_score(gpt.tokenizer.encode(text), gpt.config.vocab_size))
        except ValueError as error:
            raise RunError(f"{_source_name(source)}: {error}") from None

    names = [_source_name(source) for source in sources]
    table = _ScoreTable(names, to_stderr=as_json or per_token)
    if per_token and not as_json:
        _write("file\tposition\tid\ttoken\tlogprob\n")
    try:
        for name, ids in zip(names, all_ids):
            several_windows = ids.size > gpt.config.n_positions + 1
            progress = _ScoreProgress(name) if several_windows else None
            result = gpt.score_ids(ids, stride, progress=progress)
            if progress is not None:
                progress.finish()
            table.add(name, result)
            if as_json:
                record = {"file": name, "tokens": result.tokens, "nll": result.nll,
                          "perplexity": result.perplexity}
                if per_token:
                    record.update(ids=ids[1:].tolist(),
                                  token_logprobs=result.token_logprobs.tolist())
                _write(json.dumps(record) + "\n")
            elif per_token:
                _write("".join(f"{name}\t{t}\t{token_id}\t{_tsv_token(gpt.tokenizer, token_id)}\t"
                               f"{logprob!r}\n" for t, token_id, logprob in
                               zip(range(1, ids.size), ids[1:].tolist(),
                                   result.token_logprobs.tolist())))
        table.finish()
    except BrokenPipeError:  # `| head` closed the pipe: stop quietly
        _silence_stdout()
        sys.exit(SIGPIPE_EXIT)


def _source_name(source) -> str:
    return "stdin" if source == "-" else source


def _read_text(source) -> str:
    """The UTF-8 text of a file or of stdin ('-'), as it is; BadParameter if unreadable."""
    name = _source_name(source)
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        raise click.BadParameter(f"cannot read {name}: {error.strerror or error}",
                                 param_hint="'[FILES]...'") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise click.BadParameter(f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at "
                                 f"offset {error.start})", param_hint="'[FILES]...'") from None


def _tsv_token(tokenizer, token_id) -> str:
    """A token's text for a TSV field: backslash, tab, newline and carriage return written as
    \\\\, \\t, \\n, \\r, and bytes that are not whole UTF-8 characters as \\xHH."""
    raw = tokenizer.decode_bytes([token_id]).replace(b"\\", b"\\\\")
    text = raw.decode("utf-8", errors="backslashreplace")
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _ScoreTable:
    """Per-file rows of tokens, nll and perplexity, then the corpus total for several files."""

    def __init__(self, names, to_stderr):
        self.width = max(len("total"), len("file"), *map(len, names))
        self.to_stderr = to_stderr
        self.rows = 0
        self.tokens = 0
        self.nll = 0.0
        self._line(f"{'file':<{self.width}}  {'tokens':>10}  {'nll':>16}  {'perplexity':>12}")

    def _line(self, text):
        if self.to_stderr:
            click.echo(text, err=True)
        else:
            _write(text + "\n")

    def _row(self, name, tokens, nll):
        from gpt2numba.score import perplexity

        self._line(f"{name:<{self.width}}  {tokens:>10}  {nll:>16.4f}  "
                   f"{perplexity(nll, tokens):>12.6g}")

    def add(self, name, result):
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
            filled = PROGRESS_BAR_WIDTH * scored // total
            bar = "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)
            click.echo(f"\rgpt2numba: {self.name} [{bar}] {scored}/{total} tokens, "
                       f"{rate:.0f} tokens/s", err=True, nl=False)
        elif now - self.last_line >= PROGRESS_SECONDS and scored < total:
            click.echo(f"gpt2numba: {self.name}: {scored}/{total} tokens, {rate:.0f} tokens/s",
                       err=True)
            self.last_line = now

    def finish(self):
        seconds = time.perf_counter() - self.start
        end = "\r\x1b[K" if self.terminal else ""
        click.echo(f"{end}gpt2numba: {self.name}: scored {self.scored} tokens in {seconds:.2f} s "
                   f"({self.scored / max(seconds, 1e-9):.0f} tokens/s)", err=True)
