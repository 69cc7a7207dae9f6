"""`gpt2numba run`: continue a prompt and print the text as it comes, then a summary line."""

import sys
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
    from gpt2numba import GPT2, WeightsError
    from gpt2numba.blocks import FORWARD_KERNELS

    if prompt_argument is not None and (prompt is not None or prompt_file is not None):
        raise click.UsageError("pass the prompt once: as PROMPT, --prompt or --prompt-file")
    text = _read_prompt(prompt if prompt_argument is None else prompt_argument, prompt_file)
    check_threads(threads)
    _say_when_sampling_options_do_nothing(ctx, temperature)
    try:
        gpt = GPT2.from_pretrained(model, revision=revision, threads=threads)
    except WeightsError as error:
        raise RunError(str(error)) from None
    stream = _stream(gpt, text, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                     repetition_penalty=repetition_penalty, seed=seed, stop=stop,
                     stop_at_eos=eos_stop, slide=slide)
    compile_seconds = compile_kernels(FORWARD_KERNELS)  # the others: for the next runs
    _print_continuation(text, stream, use_color(no_color))
    if stream.stop_reason == "context":
        click.echo(f"gpt2numba: {stream.context_full_message(slide='--slide')}", err=True)
    click.echo(summary_line(stream, gpt.load_report, compile_seconds), err=True)


def _say_when_sampling_options_do_nothing(ctx, temperature):
    """One line on stderr when --top-k, --top-p or --seed was given without sampling."""
    given = [name for name in SAMPLING_ONLY
             if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if given and temperature == 0:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        click.echo(f"gpt2numba: {options} {'has' if len(given) == 1 else 'have'} no effect in "
                   f"greedy decoding (temperature 0); add --temperature 0.8 (say) to sample",
                   err=True)


def _stream(gpt, text, max_new_tokens, **options):
    """gpt.stream(text, ...), its ArgumentError turned into the command line's: a prompt too
    long (RunError, which says how to go on) or a bad option (BadParameter naming it)."""
    from gpt2numba import ArgumentError

    try:
        return gpt.stream(text, max_new_tokens, **options)
    except ArgumentError as error:
        if error.argument == "prompt":
            raise RunError(f"{error}; shorten the prompt, or pass --slide to continue its last "
                           f"{gpt.config.n_positions} tokens") from None
        option = "--" + error.argument.replace("_", "-")
        raise click.BadParameter(str(error), param_hint=f"'{option}'") from None


def _print_continuation(text, stream, color):
    """Print the prompt, then the stream's pieces as they come (cyan when `color`), then a
    newline; a RunError when the logits stop being finite."""
    from gpt2numba import ContextFullWarning
    from gpt2numba.sampling import NonFiniteLogitsError

    write(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ContextFullWarning)  # said by `run`, with --slide
            for piece in stream:
                write(click.style(piece, fg="cyan") if color else piece)
    except NonFiniteLogitsError as error:
        write("\n")
        raise RunError(str(error)) from None
    write("\n")


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


def summary_line(stream, load_report, compile_seconds) -> str:
    """The stderr footer, e.g. `gpt2numba: 50 tokens in 2.31 s (21.6 tokens/s), first token
    0.35 s, download 4.0 s, load 0.8 s, compile 12.3 s, stopped: max_new_tokens reached`.

    `stream` is the finished TextStream; `load_report` the model's runtime.LoadReport;
    `compile_seconds` what the compile before generating took (common.compile_kernels: None
    when the kernels were cached). The compile is the sum of that and any compile in the load,
    or "kernels cached" when there was none. The download appears when a file came over the
    network (not for a local, cached or offline model, however long the Hub took to answer).
    """
    n = len(stream.new_ids)
    seconds = stream.seconds
    parts = [f"{n} token{'' if n == 1 else 's'} in {seconds:.2f} s"
             + (f" ({n / seconds:.1f} tokens/s)" if n and seconds > 0 else "")]
    if stream.first_token_seconds is not None:
        parts.append(f"first token {stream.first_token_seconds:.2f} s")
    if load_report.download_seconds is not None:
        parts.append(f"download {load_report.download_seconds:.1f} s")
    parts.append(f"load {load_report.load_seconds:.1f} s")
    compiles = [s for s in (load_report.compile_seconds, compile_seconds) if s is not None]
    parts.append(f"compile {sum(compiles):.1f} s" if compiles else "kernels cached")
    parts.append(f"stopped: {stream.stopped_because}")
    return "gpt2numba: " + ", ".join(parts)
