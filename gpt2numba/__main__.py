"""The `gpt2numba` command: `python -m gpt2numba` and the console script both start here.

Importing the command line (click, then NumPy and Numba) takes a moment; a Ctrl-C in that
moment must end the program like any other Ctrl-C, so the import itself runs inside the
handler.

Numba highlights its own messages with colorama where colorama is installed, and colorama's
first use registers an exit handler that writes a colour reset to a terminal's stdout: after
`gpt2numba run`, even with NO_COLOR or --no-color. The command turns that highlighting off
before Numba is imported (a NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING of the user's own stays).
"""

import os
import sys

SIGINT_EXIT = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C


def main():
    """Run the command line; Ctrl-C at any point ends it with one line and status 130."""
    os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")
    try:
        from gpt2numba.cli import main as command_line

        command_line(prog_name="gpt2numba")
    except KeyboardInterrupt:
        sys.stderr.write("gpt2numba: interrupted\n")
        sys.exit(SIGINT_EXIT)


if __name__ == "__main__":
    main()
