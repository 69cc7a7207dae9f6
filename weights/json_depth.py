"""How deep a JSON text nests, measured before Python's parser sees it.

json.loads parses arrays and objects recursively: a file of 100,000 nested brackets raises
RecursionError, a traceback instead of a message. Every JSON file of a checkpoint (the
safetensors header, config.json, vocab.json) is checked with `nested_deeper_than` first, by
json_file.parse_json. The
check skips strings (brackets inside tokens do not nest), runs in linear time whatever the text
holds, and recurses nowhere.
"""

import itertools
import re

# JSON nesting a checkpoint's files may use: serde_json's recursion limit, which the
# safetensors library inherits. GPT-2's files nest at most 2 deep.
MAX_DEPTH = 128

# A JSON string, or an unterminated one up to the end: it always matches where it starts, so
# the substitution stays linear on any input.
_STRING = re.compile(r'"(?:[^"\\]|\\.?)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nested_deeper_than(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The nesting depth of `text` if it is more than `limit`, else None.

    For text that is not JSON, the depth a parser would reach before failing, at most.
    """
    if text.count("[") + text.count("{") <= limit:  # cannot nest deeper: no scan needed
        return None
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)
    return depth if depth > limit else None
