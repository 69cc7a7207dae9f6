"""safetensors headers built by hand: as strict as the safetensors library, bounded in time and
memory whatever the JSON holds, every refusal one WeightsError line naming the file."""

import json
import subprocess
import sys

import pytest
from safetensors import safe_open

from gpt2numba.weights import WeightsError, read_header
from support.paths import REPO_ROOT


def write_file(path, header, data_bytes, *, text=None):
    """A safetensors file: length prefix, the header (`text` verbatim, else JSON of `header`),
    then `data_bytes` bytes of data."""
    text = json.dumps(header).encode() if text is None else text
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(data_bytes))
    return path


def f32(begin, end, *shape):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}


def refusal(path):
    with pytest.raises(WeightsError) as error:
        read_header(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    return message


def safetensors_refuses(path):
    try:
        with safe_open(path, framework="numpy") as f:
            for name in f.keys():
                f.get_tensor(name)
    except Exception:
        return True
    return False


# (header, data bytes): files the safetensors library refuses, and gpt2numba must too.
BROKEN = {
    "overlap": ({"a": f32(0, 16, 4), "b": f32(8, 24, 4)}, 24),
    "same bytes twice": ({"a": f32(0, 16, 4), "b": f32(0, 16, 4)}, 16),
    "gap": ({"a": f32(0, 16, 4), "b": f32(20, 36, 4)}, 36),
    "gap at the start": ({"a": f32(4, 20, 4)}, 20),
    "bytes after the data": ({"a": f32(0, 16, 4)}, 20),
    "data past the end": ({"a": f32(0, 16, 4)}, 12),
    "metadata not strings": ({"__metadata__": {"format": 1}, "a": f32(0, 16, 4)}, 16),
}
# Files the library accepts, and gpt2numba must too: any order in the header, empty tensors.
GOOD = {
    "one tensor": ({"a": f32(0, 16, 4)}, 16),
    "listed out of order": ({"b": f32(16, 24, 2), "a": f32(0, 16, 4)}, 24),
    "empty tensors": ({"a": f32(0, 0, 0), "b": f32(0, 8, 2), "c": f32(8, 8, 3, 0)}, 8),
    "metadata": ({"__metadata__": {"format": "pt"}, "a": f32(0, 4, 1)}, 4),
    "nothing": ({}, 0),
}


@pytest.mark.parametrize("case", BROKEN)
def test_what_safetensors_refuses_is_refused(tmp_path, case):
    path = write_file(tmp_path / "model.safetensors", *BROKEN[case])
    assert safetensors_refuses(path)
    refusal(path)


@pytest.mark.parametrize("case", GOOD)
def test_what_safetensors_accepts_is_accepted(tmp_path, case):
    header, size = GOOD[case]
    path = write_file(tmp_path / "model.safetensors", header, size)
    assert not safetensors_refuses(path)
    entries, _ = read_header(path)
    assert set(entries) == set(header) - {"__metadata__"}


def test_overlap_and_gap_name_the_tensor(tmp_path):
    path = write_file(tmp_path / "model.safetensors", *BROKEN["overlap"])
    assert "tensor 'b' overlaps tensor 'a'" in refusal(path)
    path = write_file(tmp_path / "model.safetensors", *BROKEN["gap"])
    assert "tensor 'b' leaves 4 unused bytes" in refusal(path)
    path = write_file(tmp_path / "model.safetensors", *BROKEN["bytes after the data"])
    assert "4 bytes after the last tensor" in refusal(path)


def test_duplicate_key_is_refused(tmp_path):
    text = (b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
            b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}')
    path = write_file(tmp_path / "model.safetensors", None, 24, text=text)
    assert "key 'a' twice" in refusal(path)


def test_duplicate_key_inside_an_entry_is_refused(tmp_path):
    text = b'{"a": {"dtype": "F32", "shape": [4], "shape": [2], "data_offsets": [0, 8]}}'
    path = write_file(tmp_path / "model.safetensors", None, 8, text=text)
    assert "key 'shape' twice" in refusal(path)


def test_100000_nested_brackets_are_one_error_line(tmp_path):
    text = b'{"__metadata__": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = write_file(tmp_path / "model.safetensors", None, 0, text=text)
    assert "nests 100001 levels deep" in refusal(path)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    note = "[{" * 1000 + '\\"' + "]" * 3
    entry = json.dumps(f32(0, 4, 1))
    text = ('{"__metadata__": {"note": "' + note + '"}, "a": ' + entry + "}").encode()
    path = write_file(tmp_path / "model.safetensors", None, 4, text=text)
    assert list(read_header(path)[0]) == ["a"]


def test_a_5000_digit_integer_is_refused(tmp_path):
    text = b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'
    path = write_file(tmp_path / "model.safetensors", None, 4, text=text)
    assert "not valid JSON" in refusal(path)


def test_a_shape_beyond_64_bits_is_refused_without_building_huge_integers(tmp_path):
    shape = [2**63 - 1] * 20_000  # a product of 1.2 million digits if computed naively
    path = write_file(tmp_path / "model.safetensors", {"a": f32(0, 4, *shape)}, 4)
    assert "more bytes than a file can hold" in refusal(path)


def test_a_header_over_1_mib_is_refused_before_it_is_read(tmp_path):
    path = write_file(tmp_path / "model.safetensors", None, 0,
                      text=b'{"__metadata__": {"x": "' + b"y" * 2**20 + b'"}}')
    assert "more than the 1048576" in refusal(path)


# The costliest JSON per byte: tiny containers and numbers become 50-60 byte Python objects.
WORST_HEADERS = {
    "lists": b'{"__metadata__": [' + b"[]," * 349_000 + b"[]]}",
    "objects": b'{"__metadata__": [' + b"{}," * 349_000 + b"{}]}",
    "numbers": b'{"__metadata__": [' + b"0," * 524_000 + b"0]}",
    "keys": b'{' + b'"":0,' * 209_000 + b'"":0}',
}
MEASURE = """
import resource, sys, time
from gpt2numba.weights import WeightsError, read_header

def peak_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM"))

before, cpu = peak_kib(), time.process_time()
try:
    read_header(sys.argv[1])
except WeightsError as error:
    print(error)
print(time.process_time() - cpu, (peak_kib() - before) / 1024)
"""


@pytest.mark.parametrize("kind", WORST_HEADERS)
def test_any_header_is_answered_within_1_s_and_100_mb(tmp_path, kind):
    path = write_file(tmp_path / "model.safetensors", None, 0, text=WORST_HEADERS[kind])
    assert path.stat().st_size <= 2**20 + 8
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                            text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    message, figures = result.stdout.strip().splitlines()
    seconds, megabytes = map(float, figures.split())
    assert str(path) in message  # each is refused: metadata not strings, or duplicate keys
    assert seconds < 1.0 and megabytes < 100, (seconds, megabytes)
