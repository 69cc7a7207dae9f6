"""The one exception the weights package raises."""


class WeightsError(Exception):
    """A checkpoint cannot be found, downloaded, read or trusted.

    The message is one sentence meant for the person at the terminal: it names what is wrong
    (the repo, folder, file or tensor) and what to do about it. The original exception, when
    there is one (a huggingface_hub error, an OSError), is chained as ``__cause__``.
    """
