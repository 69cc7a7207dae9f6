"""The library's error for a bad argument, which a caller can point back at its own input."""


class ArgumentError(ValueError):
    """A bad value for one argument of the library's face (a ValueError).

    `argument` is its name as the signature spells it ("top_p", "max_new_tokens", "prompt"), so
    a caller such as the command line can name its own option without reading the message.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument
