"""A JSON file from anyone, read with bounds: config.json, vocab.json, the safetensors header.

Each is read in the same steps: at most a given number of bytes (the size is looked at before
anything is read, and a pipe or a device, which has no size, is read one byte past the limit and
no further), decoded as UTF-8, measured for nesting (json_depth) before Python's parser sees it,
parsed, and required to be a JSON object. A step that fails raises FileProblem: its `kind` names
the step and its `facts` what was found, and each caller puts it in its own words, naming its
file and its limit (config.json's and vocab.json's messages differ, and the header's is about a
part of model.safetensors). A file that cannot be opened or read raises OSError.
"""

import json
import os
import re

from .json_depth import MAX_DEPTH, nested_deeper_than

_OBJECT = re.compile(r"[ \t\n\r]*\{")   # JSON's whitespace, then the brace that opens an object


class FileProblem(Exception):
    """Why a file cannot be used; `kind` and the `facts` that come with it:

    - "too large": more bytes than the limit. amount ("N bytes", or "endless" for a file with
      no size that goes on past the limit), limit_mib
    - "not UTF-8": error (the UnicodeDecodeError), reason (its short form), line (from 1)
    - "too deep": depth, max_depth (json_depth.MAX_DEPTH)
    - "not JSON": error (the JSONDecodeError), reason (its short form), line, column
    - "unusable JSON": error (JSON that Python cannot convert: an integer of thousands of digits)
    - "not an object": type (the Python type name of what the file holds: list, int, ...)

    The error, where there is one, is also the `__cause__`.
    """

    def __init__(self, kind, **facts):
        super().__init__(kind)
        self.kind, self.facts = kind, facts

    def words(self, messages, **names) -> str:
        """The caller's message: messages[kind] formatted with the facts and `names` (path, ...)."""
        return messages[self.kind].format(**self.facts, **names)


def read_json(path, limit, pairs_hook=None):
    """The JSON object in the file at `path`, of at most `limit` bytes: parse_json(read_utf8)."""
    return parse_json(read_utf8(path, limit), pairs_hook)


def read_utf8(path, limit) -> str:
    """The UTF-8 text of the file at `path`: FileProblem "too large" past `limit` bytes (read
    no further), "not UTF-8"; OSError if it cannot be read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        amount = f"{size} bytes" if size > limit else "endless"
        raise FileProblem("too large", amount=amount, limit_mib=limit >> 20)
    return _decode(data)


def parse_json(text, pairs_hook=None):
    """The JSON object of `text` (a str, or bytes of UTF-8), its objects built by
    ``object_pairs_hook=pairs_hook`` (dicts without one).

    FileProblem "not UTF-8", "too deep" (found before parsing), "not JSON", "unusable JSON" or
    "not an object". An exception of pairs_hook's own passes through, unless it is a ValueError.
    """
    if isinstance(text, bytes):
        text = _decode(text)
    depth = nested_deeper_than(text)
    if depth is not None:
        raise FileProblem("too deep", depth=depth, max_depth=MAX_DEPTH)
    try:
        value = json.loads(text, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as error:
        raise FileProblem("not JSON", error=error, reason=error.msg, line=error.lineno,
                          column=error.colno) from error
    except ValueError as error:  # an integer of more digits than Python converts
        raise FileProblem("unusable JSON", error=error) from error
    if not _OBJECT.match(text):
        raise FileProblem("not an object", type=type(value).__name__)
    return value


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise FileProblem("not UTF-8", error=error, reason=error.reason, line=line) from error
