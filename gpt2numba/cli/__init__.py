"""The `gpt2numba` command line: parse options, call the library, print.

    gpt2numba run --prompt "Alan Turing theorized that" --max-new-tokens 40

`main` is the click group (the console script and `python -m gpt2numba` both call it); each
subcommand is a click command of its own module (run.py, score.py, serve.py, tools.py for
bench and download; common.py holds what they share), added to the group below. Every error
ends the process with one line on stderr, `gpt2numba: error: ...`, and exit status 2 for a bad
command line (as click does), 1 for a failure at run time (unknown model, offline and not
cached, prompt too long), 130 for Ctrl-C.
"""

import sys

import click

from gpt2numba.cli.common import end_stdout_line, error_line
from gpt2numba.cli.compare import compare
from gpt2numba.cli.run import run
from gpt2numba.cli.score import score
from gpt2numba.cli.serve import serve
from gpt2numba.cli.tools import bench, download

SIGINT_EXIT = 130    # 128 + SIGINT


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
            error_line(message)
            sys.exit(error.exit_code)
        except (click.Abort, KeyboardInterrupt, _Interrupted):
            end_stdout_line()
            click.echo("gpt2numba: interrupted", err=True)
            sys.exit(SIGINT_EXIT)
        sys.exit(code if isinstance(code, int) else 0)


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




for command in (run, score, compare, serve, bench, download):
    main.add_command(command)
