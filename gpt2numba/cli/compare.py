"""`gpt2numba compare -m A -m B FILES`: two models of one vocabulary on the same texts."""

import sys

import click

from gpt2numba.cli.common import RunError, error_line, non_empty, printable, write
from gpt2numba.cli.score import _read_texts

# The table's columns: title, Comparison attribute, width, format.
COLUMNS = (("tokens", "tokens", 8, ""), ("ppl_a", "perplexity_a", 12, ".6g"),
           ("ppl_b", "perplexity_b", 12, ".6g"), ("kl_mean", "kl_mean", 10, ".4f"),
           ("kl_max", "kl_max", 10, ".4f"), ("top1_agree", "top1_agreement", 10, ".4f"),
           ("x_ppl", "cross_perplexity", 12, ".6g"), ("binoculars", "binoculars", 10, ".4f"))


@click.command(short_help="Compare two models on texts: KL, top-1, Binoculars.")
@click.argument("files", nargs=-1, metavar="[FILES]...")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME_OR_PATH",
              callback=non_empty,
              help="Given twice: model A (the base; Binoculars' observer), then model B (the "
                   "performer). Both must share one vocabulary, as gpt2 and distilgpt2 do.")
@click.option("--stride", metavar="N", type=click.IntRange(min=1),
              show_default="n_positions / 2", help="As for `gpt2numba score`.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per file (JSON Lines) instead of the table.")
def compare(files, models, stride, as_json):
    """Compare model B with model A on each FILE ('-' = stdin, the default; UTF-8, at most
    16 MiB): both perplexities, the mean and maximum over the scored positions of KL(P_A ||
    P_B) (nats), how often their likeliest tokens agree, and Binoculars' cross-perplexity
    (x_ppl: exp of the mean cross-entropy of B's predictions under A's) and score (B's
    log-perplexity / log x_ppl). Both models read each window of the text one after the
    other. A file that cannot be compared is named on stderr and the others are compared; the
    exit status is then 2 (a file cannot be read) or 1 (too short). Example:

    \b
        gpt2numba compare -m gpt2 -m distilgpt2 essay.txt
    """
    if len(models) != 2:
        raise click.BadParameter(f"give two models, -m A -m B (got {len(models)})",
                                 param_hint="'-m' / '--model'")
    sources = files or ("-",)
    if sources.count("-") > 1:
        raise click.BadParameter("stdin ('-') can be read only once", param_hint="'[FILES]...'")
    texts, status = _read_texts(sources)
    if texts:
        model_a, model_b = _load(models)
        status = max(status, _print_comparisons(model_a, model_b, texts, stride, as_json))
    if status:
        sys.exit(status)


def _load(models):
    """The two GPT2 models, and a RunError unless they load and share a vocabulary."""
    from gpt2numba.comparison import check_same_vocabulary
    from gpt2numba.errors import ArgumentError
    from gpt2numba.model import GPT2
    from gpt2numba.weights import WeightsError

    try:
        loaded = [GPT2.from_pretrained(name) for name in models]
        check_same_vocabulary(*loaded)
    except (WeightsError, ArgumentError) as error:
        raise RunError(str(error)) from None
    return loaded


def _print_comparisons(model_a, model_b, texts, stride, as_json):
    """A row (or a JSON record) per text; the exit status, 1 if a text was too short."""
    import json

    from gpt2numba.comparison import compare as compare_models
    from gpt2numba.errors import ArgumentError

    width = max(len("file"), *(len(printable(name)) for name, _ in texts))
    status, header = 0, False
    for name, text in texts:
        try:
            result = compare_models(model_a, model_b, text, stride)
        except ArgumentError as error:
            if error.argument == "stride":
                raise click.BadParameter(str(error), param_hint="'--stride'") from None
            error_line(f"{name}: {error}")
            status = RunError.exit_code
            continue
        if as_json:
            write(json.dumps({"file": printable(name), **result.as_dict()}) + "\n")
            continue
        if not header:
            write(f"{'file':<{width}}" + "".join(f"  {title:>{size}}"
                                                 for title, _, size, _ in COLUMNS) + "\n")
            header = True
        write(f"{printable(name):<{width}}" + "".join(
            f"  {getattr(result, field):>{size}{spec}}" for _, field, size, spec in COLUMNS) + "\n")
    return status
