"""Bad arguments to the library's face: the error that names them, and the checks that more
than one entry point makes."""

import numbers

import numpy as np


class ArgumentError(ValueError):
    """A bad value for one argument of the library's face (a ValueError).

    `argument` is its name as the signature spells it ("top_p", "max_new_tokens", "prompt"), so
    a caller such as the command line can name its own option without reading the message.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


def is_count(value) -> bool:
    """True for a Python or NumPy integer; a bool is an int to Python, but never a count here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_in_vocabulary(ids, vocab_size, argument="ids"):
    """ArgumentError naming the first of `ids` (an integer array) outside 0..vocab_size-1."""
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.size:
        raise ArgumentError(argument, f"token id {int(bad[0])} is out of range: ids must be in "
                                      f"0..{vocab_size - 1}")
