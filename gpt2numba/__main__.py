"""The `gpt2numba` command: `python -m gpt2numba` and the console script both start here.

Importing the command line (click, then NumPy and Numba) takes a moment; a Ctrl-C in that
moment must end the program like any other Ctrl-C, so the import itself runs inside the
handler.
"""

import sys

SIGINT_EXIT = 130  # 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C


def main():
    """Run the command line; Ctrl-C at any point ends it with one line and status 130."""
    try:
        from gpt2numba.cli import main as command_line

        command_line(prog_name="gpt2numba")
    except KeyboardInterrupt:
        sys.stderr.write("gpt2numba: interrupted\n")
        sys.exit(SIGINT_EXIT)


if __name__ == "__main__":
    main()
