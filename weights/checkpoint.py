"""model.safetensors, opened memory-mapped: one np.memmap per tensor, names mapped, validated.

Why not safetensors' own numpy API: ``safe_open(path, framework="numpy").get_tensor(name)``
(and ``safetensors.numpy.load_file``, which calls it) returns a *copy*. Measured with
safetensors 0.8 on a 400 MB float32 tensor: the returned array does not own its data, but its
base is a memoryview of a fresh heap buffer, and RSS grows by 400 MB of anonymous memory; with
the default ``backend="mmap"`` the file pages touched while copying also stay resident until the
``safe_open`` handle is closed, so the peak is about twice the tensor. Loading GPT-2 that way
would cost at least a full private copy of the file.

So this module reads the safetensors header itself (8-byte little-endian length, then that many
bytes of JSON: ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": ...}``,
offsets relative to the first byte after the header), validates it against the file size, and
returns each float32 tensor as ``np.memmap(path, mode="r", offset=..., shape=...)`` viewed as a
plain read-only ``np.ndarray``. Each tensor has its own mapping: no page is read until it is
touched, and when the caller drops its last reference to a tensor (e.g. after making its own
packed copy), that mapping is unmapped and its pages leave the process's RSS. Float16 and
bfloat16 tensors are converted to float32, which is necessarily a copy (their mapping is dropped
right after). Each live mapping holds one file descriptor (Python's mmap keeps a dup of it):
gpt2-xl has 580 tensors, so the soft RLIMIT_NOFILE is raised (best effort) when it is too low.
"""

import math
import os
from pathlib import Path

import numpy as np

from .errors import WeightsError
from .json_file import FileProblem, parse_json
from .layout import LM_HEAD, block_index, canonical_name, is_not_a_weight, tensor_shapes

CHECKPOINT_NAME = "model.safetensors"
# Bytes per element of every dtype the safetensors format defines (to check data_offsets).
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
             "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
             "I64": 8, "U64": 8, "F64": 8, "C64": 8}
_LOADABLE = ("F32", "F16", "BF16")
# safetensors allows 100 MB of header; parsing that much JSON can take gigabytes of Python
# objects. gpt2-xl's header is 55 KB (580 tensors), so 1 MiB keeps parsing under 0.1 s and
# 30 MB whatever the JSON holds.
_MAX_HEADER = 1024 * 1024
_MAX_INT = 2**64  # sizes and offsets are u64 in safetensors: larger is ValidationOverflow
_COMPARE_CHUNK = 1 << 20  # bytes of each tensor read at a time to compare the LM head with wte


def read_header(path) -> tuple[dict, int]:
    """Parse and check a safetensors header without reading any tensor data.

    Returns ``(entries, data_start)``: entries maps each tensor name to
    ``{"dtype": str, "shape": tuple, "begin": int, "end": int}`` (absolute byte offsets in the
    file), ``__metadata__`` left out; data_start is 8 + the header length.

    As strict as the safetensors library (its ``Metadata::validate`` and ``read_metadata``):
    the header is a UTF-8 JSON object starting with ``{``, with no key twice, ``__metadata__``
    (if any) a map of strings to strings, every entry a known dtype, a shape and data_offsets
    whose byte count is shape x dtype, and the tensors laid end to end: disjoint, no gap, the
    last one ending exactly at the end of the file. Stricter in one way: the header may be at
    most 1 MiB (safetensors: 100 MB) and nest at most 128 levels, checked before it is parsed,
    so any header is answered in well under a second and 100 MB.

    Raises WeightsError, one line naming the file (and the tensor where there is one), for
    every violation, and for a file too short or truncated.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            if len(prefix) < 8:
                raise WeightsError(f"{path} is {size} bytes long, too short to be a safetensors "
                                   f"file; it is truncated or corrupt: download or copy it again")
            header_len = int.from_bytes(prefix, "little")
            if header_len > size - 8:
                raise WeightsError(f"{path}: the header claims {header_len} bytes but the file "
                                   f"has only {size - 8} after the length prefix; the file is "
                                   f"truncated or not a safetensors file: download or copy it "
                                   f"again")
            if header_len > _MAX_HEADER:
                raise WeightsError(f"{path}: the safetensors header is {header_len} bytes, more "
                                   f"than the {_MAX_HEADER} gpt2numba reads (a GPT-2 header is "
                                   f"under 64 KiB); the file is corrupt or not a GPT-2 checkpoint")
            raw = f.read(header_len)
    except OSError as error:
        raise WeightsError(f"{path} cannot be read ({error}); check the file") from error
    header = _parse_header_json(path, raw)

    data_start = 8 + header_len
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            _check_metadata(path, info)
            continue
        entries[name] = _check_entry(path, name, info, data_start)
    _check_layout(path, entries, data_start, size)
    return entries, data_start


class _DuplicateKey(Exception):
    """A key given twice in one object: not a ValueError, so that parse_json lets it through."""


def _object_without_duplicates(pairs):
    """json object_pairs_hook: a dict, or _DuplicateKey naming the first key given twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


# What can be wrong with the header as JSON, in words (json_file.FileProblem's kinds).
_JSON_PROBLEMS = {
    "not UTF-8": "is not valid JSON ({error})",
    "too deep": "nests {depth} levels deep (at most {max_depth} allowed)",
    "not JSON": "is not valid JSON ({error})",
    "unusable JSON": "is not valid JSON ({error})",   # an integer of too many digits
    "not an object": "is not a JSON object",
}


def _parse_header_json(path, raw: bytes) -> dict:
    def corrupt(what):
        return WeightsError(f"{path}: the safetensors header {what}; the file is corrupt or not "
                            f"a safetensors file: download or copy it again")

    if not raw.startswith(b"{"):
        raise corrupt("is not valid JSON: it does not start with '{'")
    try:
        return parse_json(raw, _object_without_duplicates)
    except _DuplicateKey as error:
        raise corrupt(f"has key {error.args[0]!r} twice") from None
    except FileProblem as problem:
        raise corrupt(problem.words(_JSON_PROBLEMS)) from None


def _check_metadata(path, metadata):
    if not (isinstance(metadata, dict)
            and all(isinstance(value, str) for value in metadata.values())):
        raise WeightsError(f"{path}: the safetensors header's __metadata__ is not a map of "
                           f"strings to strings; the file is corrupt or not a safetensors file")


def _is_u64(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_INT


def _check_entry(path, name, info, data_start):
    def bad(what):
        return WeightsError(f"{path}: tensor {name!r} {what}; the file is corrupt: download or "
                            f"copy it again")

    if not isinstance(info, dict):
        raise bad("has no dtype/shape/data_offsets record in the header")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _ITEMSIZE:
        raise bad(f"has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_u64(n) for n in shape):
        raise bad(f"has an invalid shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_u64(n) for n in offsets)
            or offsets[0] > offsets[1]):
        raise bad(f"has invalid data_offsets {offsets!r}")
    nbytes = _ITEMSIZE[dtype]
    for n in shape:  # a running product, as safetensors' checked_mul: no huge integers built
        nbytes *= n
        if nbytes >= _MAX_INT:
            raise bad(f"has shape {shape} of {dtype}, more bytes than a file can hold")
    begin, end = data_start + offsets[0], data_start + offsets[1]
    if end - begin != nbytes:
        raise bad(f"has {end - begin} bytes of data but shape {shape} of {dtype} needs {nbytes}")
    return {"dtype": dtype, "shape": tuple(shape), "begin": begin, "end": end}


def _check_layout(path, entries, data_start, size):
    """Tensors laid end to end from the data start to the end of the file, as safetensors wants."""
    position, previous = data_start, None
    for name, entry in sorted(entries.items(), key=lambda item: (item[1]["begin"],
                                                                 item[1]["end"])):
        if entry["end"] > size:   # begin <= end: _check_entry made sure
            raise WeightsError(f"{path}: tensor {name!r} ends at byte {entry['end']} but the file "
                               f"has only {size} bytes; the file is truncated: download or copy "
                               f"it again")
        if entry["begin"] != position:
            what = (f"overlaps tensor {previous!r}" if entry["begin"] < position else
                    f"leaves {entry['begin'] - position} unused bytes before it")
            raise WeightsError(f"{path}: tensor {name!r} {what} (data_offsets must lay the "
                               f"tensors end to end); the file is corrupt: download or copy it "
                               f"again")
        position, previous = entry["end"], name
    if position != size:
        raise WeightsError(f"{path} has {size - position} bytes after the last tensor's data; "
                           f"the file is corrupt or was appended to: download or copy it again")


def load_tensors(folder, config) -> dict:
    """Open ``folder/model.safetensors`` memory-mapped and return GPT-2's weights.

    ``config`` gives the sizes (n_layer, n_embd, n_positions, vocab_size attributes, as
    gpt2numba's GPT2Config has). The result maps the canonical names of
    ``layout.tensor_shapes`` to float32, C-contiguous, read-only ndarrays, in model order.
    Conv1D weights stay as stored, [in, out]. Float32 tensors are each backed by their own
    memory map (see the module docstring: nothing is read until touched, and dropping a tensor
    unmaps it); float16 and bfloat16 tensors are converted to float32 copies.

    Names are accepted as stored by OpenAI or by transformers (``layout.canonical_name``). The
    tensors that are no weights (``layout.is_not_a_weight``: mask buffers, the tied LM head)
    are ignored, once an LM head is found to hold wte's bytes (`_check_tied_head`). Any other
    tensor is an error: a GPT-2 file holds nothing else, and an extra layer means the file does
    not match config.json.

    Raises WeightsError naming the file and the tensor for: a missing tensor, an unexpected or
    duplicated one, a wrong shape (expected vs found), a dtype other than F32/F16/BF16, an LM
    head that is not wte, and a truncated or corrupt file (see ``read_header``).
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; gpt2numba loads safetensors checkpoints "
                           f"(model.safetensors) only")
    entries, _ = read_header(path)
    _check_layers(path, entries, config.n_layer)
    shapes = tensor_shapes(config)
    found, heads = _find_tensors(path, entries, shapes)
    _check_shapes_and_dtypes(path, entries, found, shapes)
    for head in heads:
        _check_tied_head(path, entries, head, found["wte.weight"])

    _ensure_fd_budget(len(shapes))
    return {name: _map(path, entries[found[name]]) for name in shapes}


def _find_tensors(path, entries, shapes) -> tuple[dict, list]:
    """(canonical name -> stored name of each tensor in `shapes`, stored names of the LM head),
    or WeightsError for a tensor missing, held twice or not part of GPT-2."""
    found = {}
    heads = []
    for stored in entries:
        name = canonical_name(stored)
        if name == LM_HEAD:
            heads.append(stored)
        elif name in shapes:
            if name in found:
                raise WeightsError(f"{path} holds tensor {name!r} twice (as {found[name]!r} and "
                                   f"{stored!r}); the file is inconsistent")
            found[name] = stored
        elif not is_not_a_weight(name):
            raise WeightsError(f"{path} holds unexpected tensor {stored!r}, which is not part of "
                               f"GPT-2; this is not a GPT-2 LM checkpoint")
    missing = [name for name in shapes if name not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WeightsError(f"{path} lacks tensor {missing[0]!r}{more}; it is not a complete "
                           f"GPT-2 checkpoint for this config.json")
    return found, heads


def _check_shapes_and_dtypes(path, entries, found, shapes):
    """WeightsError unless each tensor has the shape config.json gives it and a float dtype."""
    for name, shape in shapes.items():
        entry = entries[found[name]]
        if entry["shape"] != shape:
            hint = ("; it is transposed ([out, in], nn.Linear), GPT-2 stores Conv1D weights as "
                    "[in, out]" if len(shape) == 2 and entry["shape"] == shape[::-1] else
                    "; the weights and the config do not belong together")
            raise WeightsError(f"{path}: tensor {found[name]!r} has shape {list(entry['shape'])}, "
                               f"expected {list(shape)} from config.json{hint}")
        if entry["dtype"] not in _LOADABLE:
            raise WeightsError(f"{path}: tensor {found[name]!r} has dtype {entry['dtype']}; "
                               f"gpt2numba loads float tensors (F32, F16 or BF16) only")


def _check_layers(path, entries, n_layer):
    """WeightsError unless the file's blocks are h.0 ... h.{n_layer - 1}: checked on the header
    alone, before anything is built per layer of config.json's n_layer."""
    layer_of = {name: block_index(canonical_name(name)) for name in entries}
    layers = set(layer_of.values()) - {None}
    beyond = next((name for name, layer in layer_of.items()
                   if layer is not None and layer >= n_layer), None)
    if beyond is not None:
        raise WeightsError(f"{path} holds tensor {beyond!r} but config.json says "
                           f"n_layer={n_layer}; the weights and the config do not belong "
                           f"together")
    if len(layers) != n_layer:
        raise WeightsError(f"{path} holds {len(layers)} layers but config.json says "
                           f"n_layer={n_layer}; the weights and the config do not belong "
                           f"together")


def _check_tied_head(path, entries, head, wte):
    """WeightsError unless tensor `head` holds the same bytes as tensor `wte`.

    config.json ties the LM head to wte (GPT2Config refuses tie_word_embeddings false), so the
    model computes the logits with wte: a head of other values would be ignored without a word.
    Equal bytes is the criterion (a NaN equals itself; 0.0 and -0.0 differ).
    """
    ties = (f"config.json ties the LM head to the token embedding (tie_word_embeddings true), "
            f"so gpt2numba would use {wte!r} instead: this is not a tied GPT-2 checkpoint; use "
            f"one whose LM head is wte, or remove {head!r} from the file")
    head_entry, wte_entry = entries[head], entries[wte]
    if (head_entry["shape"], head_entry["dtype"]) != (wte_entry["shape"], wte_entry["dtype"]):
        raise WeightsError(f"{path}: tensor {head!r} has shape {list(head_entry['shape'])} and "
                           f"dtype {head_entry['dtype']} where {wte!r} has "
                           f"{list(wte_entry['shape'])} and {wte_entry['dtype']}; {ties}")
    if not _same_bytes(path, head_entry, wte_entry):
        raise WeightsError(f"{path}: tensor {head!r} differs from {wte!r}; {ties}")


def _same_bytes(path, a, b) -> bool:
    """True if entries a and b (of equal length) hold the same bytes in the file at path.

    Read a chunk of each at a time with plain reads: the memory used is two chunks whatever the
    tensors' size, and no page of the file joins the process's resident set.
    """
    length = a["end"] - a["begin"]
    try:
        with open(path, "rb") as f:
            for offset in range(0, length, _COMPARE_CHUNK):
                size = min(_COMPARE_CHUNK, length - offset)
                f.seek(a["begin"] + offset)
                chunk = f.read(size)
                f.seek(b["begin"] + offset)
                if chunk != f.read(size):
                    return False
    except OSError as error:
        raise WeightsError(f"{path} cannot be read ({error}); check the file") from error
    return True


def _map(path, entry) -> np.ndarray:
    """One tensor as a float32 C-contiguous ndarray: its own read-only mapping for F32."""
    shape, dtype = entry["shape"], entry["dtype"]
    count = math.prod(shape)
    if count == 0:  # mmap cannot map zero bytes
        return np.zeros(shape, np.float32)
    stored = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[dtype]
    mapped = np.memmap(path, dtype=stored, mode="r", offset=entry["begin"], shape=shape)
    if dtype == "F16":
        array = mapped.astype(np.float32).view(np.ndarray)
        array.flags.writeable = False  # read-only like the mapped float32 tensors
        return array
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        array = (mapped.astype(np.uint32) << 16).view(np.float32).view(np.ndarray)
        array.flags.writeable = False
        return array
    array = mapped.view(np.ndarray)  # a plain ndarray whose base keeps the mapping alive
    if not array.flags.aligned:
        # Only for files whose float32 data does not start on a 4-byte boundary (writers pad
        # the header to 8 bytes, so real files never get here): kernels want aligned arrays.
        array = np.array(array)
        array.flags.writeable = False
    return array


def _ensure_fd_budget(n_maps):
    """Raise the soft open-file limit if it cannot hold one descriptor per mapping (best effort)."""
    try:
        import resource
    except ImportError:  # not POSIX: nothing to do
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = n_maps + 256
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    for limit in (wanted * 2, wanted):
        if hard != resource.RLIM_INFINITY and limit > hard:
            limit = hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
            return
        except (ValueError, OSError):
            continue
