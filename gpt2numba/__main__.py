"""`python -m gpt2numba`: the same command line as the `gpt2numba` console script."""

from gpt2numba.cli import main

if __name__ == "__main__":
    main(prog_name="gpt2numba")
