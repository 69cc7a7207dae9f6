"""`gpt2numba run`: continue a prompt and print the text as it comes, then a summary line."""

import sys
import time
import warnings

import click
from click.core import ParameterSource

from gpt2numba.cli.common import (
    FiniteFloatRange,
    InputError,
    RunError,
    check_threads,
    compile_kernels,
    non_empty,
    read_text,
    use_color,
    write,
)

SAMPLING_ONLY = ("top_k", "top_p", "seed")   # options that mean nothing in greedy decoding


@click.command(short_help="Continue a prompt with GPT-2 and print the text as it comes.")
@click.argument("prompt_argument", metavar="[PROMPT]", required=False)
@click.option("--prompt", metavar="TEXT",
              help="The text to continue (instead of PROMPT); '-' reads it from stdin. An empty "
                   "prompt conditions on <|endoftext|>, as GPT-2's unconditional samples do.")
@click.option("--prompt-file", metavar="PATH",
              type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True),
              help="Read the prompt from this UTF-8 file ('-' = stdin) instead. One trailing "
                   "newline is dropped. Prompts from stdin or a file: at most 16 MiB.")
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=non_empty,
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
@click.option("--stop", multiple=True, metavar="TEXT", callback=non_empty,
              help="End generation when the continuation contains TEXT (not printed). "
                   "Repeatable.")
@click.option("--slide", is_flag=True,
              help="When prompt and continuation fill the context (n_positions, 1024 for GPT-2), "
                   "keep going on the last n_positions tokens instead of stopping.")
@click.option("--eos-stop/--no-eos-stop", default=True, show_default=True,
              help="Stop when the model writes <|endoftext|>.")
@click.option("--threads", metavar="N", type=click.IntRange(min=1),
              show_default="the cores other processes leave idle",
              help="Threads for the kernels.")
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
    Without PROMPT, --prompt or --prompt-file, the prompt is read from stdin when it is piped
    in (not a terminal), as with --prompt -. Example:

    \b
        gpt2numba run "Alan Turing theorized that" -n 40
        echo "The meaning of life is" | gpt2numba run -t 0.8 -s 1
    """
    from gpt2numba import GPT2, ArgumentError, ContextFullWarning, WeightsError
    from gpt2numba.blocks import FORWARD_KERNELS
    from gpt2numba.compiling import start_compiling
    from gpt2numba.kernels.cache import recording_compiles
    from gpt2numba.sampling import NonFiniteLogitsError
    from gpt2numba.weights import fetch

    if prompt_argument is not None and (prompt is not None or prompt_file is not None):
        raise click.UsageError("pass the prompt once: as PROMPT, --prompt or --prompt-file")
    text = _read_prompt(prompt if prompt_argument is None else prompt_argument, prompt_file)
    check_threads(threads)
    given = [name for name in SAMPLING_ONLY
             if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if given and temperature == 0:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        click.echo(f"gpt2numba: {options} {'has' if len(given) == 1 else 'have'} no effect in "
                   f"greedy decoding (temperature 0); add --temperature 0.8 (say) to sample",
                   err=True)

    with recording_compiles() as compiles:
        try:
            start_compiling()  # a first run compiles in two other processes meanwhile
            start = time.perf_counter()
            folder, downloaded = fetch(model, revision=revision)
            download_seconds = time.perf_counter() - start if downloaded else None
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

        compiled_here = compile_kernels(FORWARD_KERNELS)  # the others: for the next runs
        color = use_color(no_color)
        try:
            write(text)
            generation_wall_start = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ContextFullWarning)  # said below, with --slide
                for piece in stream:
                    write(click.style(piece, fg="cyan") if color else piece)
            write("\n")
        except NonFiniteLogitsError as error:
            write("\n")
            raise RunError(str(error)) from None

    if compiled_here is not None:  # includes the wait for the compiling processes
        compiles.append(compiled_here)
    in_load = sum(max(0.0, min(end, load_end) - max(begin, load_start))
                  for begin, end in compiles)
    times = Phases(download_seconds, load_end - load_start - in_load, compiles)
    if stream.stop_reason == "context":
        click.echo(f"gpt2numba: {stream.context_full_message(slide='--slide')}", err=True)
    click.echo(summary_line(stream, times, generation_wall_start), err=True)


def _read_prompt(prompt, prompt_file) -> str:
    """The prompt text from --prompt, --prompt - (stdin) or --prompt-file, else from stdin when
    something is piped into it; UsageError if there is none or two, BadParameter if the file or
    stdin cannot be read (common.read_text)."""
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("pass either --prompt or --prompt-file, not both")
    if prompt is not None and prompt != "-":
        return prompt
    if prompt is None and prompt_file is None:
        return _piped_prompt()
    source = prompt_file if prompt_file is not None else "-"
    if source == "-" and sys.stdin is not None and sys.stdin.isatty():
        click.echo("gpt2numba: type the prompt, then press Ctrl-D on a line of its own to end it "
                   "(Ctrl-Z then Enter on Windows)", err=True)
    option = "'--prompt-file'" if prompt_file is not None else "'--prompt'"
    return _without_final_newline(_prompt_text(source, option))


def _piped_prompt() -> str:
    """The prompt piped into stdin, given no prompt (as `llm` and most Unix tools read it).
    UsageError when stdin is a terminal (the user forgot the prompt; --prompt - types one),
    closed, or empty (/dev/null: --prompt '' is the empty prompt)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("no prompt: pass PROMPT, --prompt - (read stdin), --prompt-file "
                               "PATH, or pipe the text in")
    text = _prompt_text("-", "'[PROMPT]'")
    if not text:
        raise click.UsageError("no prompt: stdin is empty; pass PROMPT, --prompt-file PATH or "
                               "some text on stdin (--prompt '' for the empty prompt)")
    return _without_final_newline(text)


def _prompt_text(source, option) -> str:
    """read_text of a file or of stdin ('-'); BadParameter naming `option` if it fails."""
    try:
        return read_text(source, over_limit="the limit for a prompt; pass a shorter text")
    except InputError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def _without_final_newline(text) -> str:
    """`text` without one final newline (\\n or \\r\\n), which ends a file or `echo`'s line."""
    return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")


class Phases:
    """How long a run spent before generating: download (resolving the model name, None when no
    file came over the network), load and compile. `compiles`: Numba's (start, end) intervals
    (time.time()), from recording_compiles, over the whole run; `load_seconds` excludes those
    that fell in the load."""

    def __init__(self, download_seconds, load_seconds, compiles):
        self.download_seconds = download_seconds
        self.load_seconds = load_seconds
        self.compiles = compiles


def _covered_seconds(intervals) -> float:
    """The length of the union of (start, end) intervals: nested ones count once."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def summary_line(stream, phases, wall_start) -> str:
    """The stderr footer, e.g. `gpt2numba: 50 tokens in 2.31 s (21.6 tokens/s), first token
    0.35 s, download 4.0 s, load 0.8 s, compile 12.3 s, stopped: max_new_tokens reached`.

    `stream` is the finished TextStream, `phases` the Phases before it. Generation and
    first-token times exclude the time Numba spent compiling; the compile time is its own item,
    or "kernels cached" when nothing was compiled. The download appears when a file came over
    the network (not for a local, cached or offline model, however long the Hub took to answer).
    `wall_start` is time.time() when the generation began.
    """
    intervals = phases.compiles
    compiled = _covered_seconds(intervals)
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
    if phases.download_seconds is not None:
        parts.append(f"download {phases.download_seconds:.1f} s")
    parts.append(f"load {phases.load_seconds:.1f} s")
    parts.append(f"compile {compiled:.1f} s" if intervals else "kernels cached")
    parts.append(f"stopped: {stream.stopped_because}")
    return "gpt2numba: " + ", ".join(parts)
