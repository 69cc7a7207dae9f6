"""`gpt2numba bench` (timings, optionally plotted) and `gpt2numba download` (fetch and compile)."""

import click

from gpt2numba.cli.common import (
    CompileProgress,
    RunError,
    check_threads,
    compile_kernels,
    non_empty,
    write,
)


@click.command(short_help="Time import, load, JIT cold / cached / warm, tokens/s.")
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=non_empty,
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
    it is installed (needs matplotlib: the clone's pip install -e '.[plot]'). Example:

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
    check_threads(threads)
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
    write((report.to_json() if as_json else format_report(report)) + "\n")
    if plot is not None:
        try:
            plot_report(report, plot)
        except OSError as error:
            raise RunError(f"cannot write {plot}: {error.strerror or error}") from None
        click.echo(f"gpt2numba: plot written to {plot}", err=True)


@click.command(short_help="Fetch a model and compile the kernels, for offline use.")
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
    from gpt2numba.compiling import start_compiling
    from gpt2numba.weights import resolve

    start_compiling()  # a first run compiles in two other processes during the download
    try:
        folder = resolve(name, revision=revision)
    except WeightsError as error:
        raise RunError(str(error)) from None
    compile_kernels()
    write(f"{folder}\n")
