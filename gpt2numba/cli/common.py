"""What the commands of the command line share: the run-time error, option checks, reading
files and stdin, writing to stdout, and the progress of compiling."""

import math
import os
import sys
import time

import click

SIGPIPE_EXIT = 141   # 128 + SIGPIPE: what a shell reports for a Unix tool cut off by `| head`
PROGRESS_BAR_WIDTH = 30
# A file or stdin is read up to this, so that /dev/zero or an endless pipe is refused, not read
# into memory: 16 MiB is about 4 million GPT-2 tokens, a prompt's 1024 many times over and a
# shelf of books to score (a larger corpus can be split into files).
INPUT_LIMIT_BYTES = 16 * 2**20

_stdout_mid_line = False   # whether the text `write` put on stdout last did not end a line


class RunError(click.ClickException):
    """A failure at run time (exit status 1): the message is the whole story, no traceback."""


class InputError(Exception):
    """A file or stdin that cannot be taken as text; the message names it and says why."""


def error_line(message):
    """Print `message` as the single line `gpt2numba: error: ...` on stderr."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    click.echo(f"gpt2numba: error: {text}", err=True)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and infinities (FloatRange lets nan through)."""

    def convert(self, value, param, ctx):
        """The float, or click's one-line failure naming the option."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def non_empty(ctx, param, value):
    """A click callback: refuse an empty string (or an empty one among repeated values)."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v == "" for v in values):
        why = {"model": "pass a model name such as gpt2, or a folder ('.' for this one)",
               "stop": "an empty stop string would end generation before its first token; "
                       "pass some text"}[param.name]
        raise click.BadParameter(f"must not be empty: {why}", ctx=ctx, param=param)
    return value


def check_threads(threads):
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


def source_name(source) -> str:
    """How a file argument is named in messages: its path, or stdin for '-'."""
    return "stdin" if source == "-" else source


def printable(name) -> str:
    """A file name as text that a UTF-8 stream takes: bytes of it that are not UTF-8 (which
    Python keeps as lone surrogates, refused by UTF-8) written as \\xHH."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def read_text(source, over_limit) -> str:
    """The UTF-8 text of a file, or of stdin for '-' (a byte-order mark dropped); at most
    INPUT_LIMIT_BYTES + 1 bytes are read. InputError, naming the source, when it cannot be
    read, is not UTF-8, or holds more than INPUT_LIMIT_BYTES (the message then goes on with
    `over_limit`, e.g. "the limit for a prompt; pass a shorter text")."""
    name = source_name(source)
    try:
        if source == "-":
            data = sys.stdin.buffer.read(INPUT_LIMIT_BYTES + 1) if sys.stdin is not None else b""
        else:
            with open(source, "rb") as file:
                data = file.read(INPUT_LIMIT_BYTES + 1)
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror or error}") from None
    if len(data) > INPUT_LIMIT_BYTES:
        raise InputError(f"{name} holds more than {INPUT_LIMIT_BYTES // 2**20} MiB, {over_limit}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                         f"{error.start})") from None


def write(text):
    """Write `text` to stdout as it is (click.echo would strip escapes in it) and flush.

    A reader that closed the pipe (`| head`) ends the program quietly with SIGPIPE_EXIT; any
    other failure to write (stdout closed, /dev/full, a failing disk) is a RunError.
    """
    global _stdout_mid_line
    if sys.stdout is None:  # Python's stdout when the process started with descriptor 1 closed
        raise RunError("stdout is closed, so the text cannot be printed; redirect it to a file "
                       "or to /dev/null")
    if text:
        _stdout_mid_line = not text.endswith("\n")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(SIGPIPE_EXIT)
    except OSError as error:
        silence_stdout()
        raise RunError(f"cannot write to stdout ({error.strerror or error}); check where "
                       f"the output goes") from None


def end_stdout_line():
    """Write a newline to stdout if what `write` put there last did not end its line, so that a
    message after it (Ctrl-C's, on the same terminal) starts a line of its own."""
    if not _stdout_mid_line or sys.stdout is None:
        return
    try:
        sys.stdout.write("\n")
        sys.stdout.flush()
    except OSError:  # the program is ending anyway; its message goes to stderr
        silence_stdout()


def use_color(no_color) -> bool:
    """Colour only on a terminal, without --no-color, and without NO_COLOR (no-color.org)."""
    return (not no_color and not os.environ.get("NO_COLOR") and sys.stdout is not None
            and sys.stdout.isatty())


def silence_stdout():
    """Point stdout at /dev/null, so that Python's flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def progress_bar(done, total) -> str:
    """PROGRESS_BAR_WIDTH characters: '#' for the share `done` of `total`, '.' for the rest."""
    filled = PROGRESS_BAR_WIDTH * done // total
    return "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled)


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
            bar = progress_bar(k - 1, n)
            click.echo(f"\r\x1b[Kgpt2numba: compiling kernels (first run only) [{bar}] "
                       f"{k}/{n} {name}", err=True, nl=False)
        else:
            click.echo(f"gpt2numba: compiling kernel {k} of {n} ({name})", err=True)

    def finish(self, cached=True):
        """The closing line, once something was shown; `cached`: whether the kernels are now in
        Numba's disk cache (else, kept in memory only, the next run compiles them again)."""
        if self.start is not None:
            end = "\r\x1b[K" if self.terminal else ""
            kept = ("cached for the next runs" if cached
                    else "kept in memory only: the next run compiles again")
            click.echo(f"{end}gpt2numba: compiled the kernels in "
                       f"{time.perf_counter() - self.start:.1f} s ({kept})", err=True)
            self.start = None


def compile_kernels(kernels=None):
    """gpt2numba.compile() of `kernels` (default: all), with CompileProgress when any is not in
    Numba's cache (else it loads them from the cache in a fraction of a second, silently).
    Returns the seconds the compile took (including any wait for the compiling processes:
    compiling.py), or None when the kernels were cached."""
    from gpt2numba.compiling import KERNELS, all_cached, compile

    kernels = KERNELS if kernels is None else kernels
    if all_cached(kernels):
        compile(kernels=kernels)
        return None
    start = time.perf_counter()
    progress = CompileProgress()
    compile(progress, kernels)
    progress.finish(cached=all_cached(kernels))
    return time.perf_counter() - start
