"""Find a checkpoint: a local folder, or a Hub repo downloaded into huggingface_hub's cache."""

import hashlib
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

from .errors import WeightsError

CHECKPOINT_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")
TOKENIZER_FILES = ("vocab.json", "merges.txt")
SHORT_NAMES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}
_PICKLES = ("pytorch_model.bin", "model.ckpt.index", "tf_model.h5", "flax_model.msgpack")
_NO_PICKLES = ("gpt2numba loads safetensors checkpoints only and does not load pickle "
               "checkpoints such as pytorch_model.bin")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# File times come from a coarser clock than time.time(): a blob written during the download may
# carry an mtime slightly before it started. Re-hashing a blob cached 2 s earlier costs nothing.
_CLOCK_SLACK = 2.0


class Fetched(NamedTuple):
    """What `fetch` found: the folder holding the files, and whether any of them came over the
    network in that call."""

    folder: Path
    downloaded: bool


def resolve(name_or_path, revision=None, files=CHECKPOINT_FILES) -> Path:
    """Return a local folder holding ``files`` for a model name, Hub repo id or folder.

    - An existing directory is used as is (its files are checked, nothing is downloaded; it
      wins over a Hub repo of the same name, as in transformers). A ``revision`` with a local
      folder is an error: there is nothing to pin.
    - gpt2, gpt2-medium, gpt2-large, gpt2-xl mean openai-community/<name>; distilgpt2 means
      distilbert/distilgpt2. Any other name is a Hub repo id ("owner/name").
    - Hub files are fetched with huggingface_hub into its standard cache, honouring HF_HOME /
      HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE (which huggingface_hub reads, some
      at import time) and ``revision`` (branch, tag or commit sha; default "main"). Files
      already cached are not downloaded again; with HF_HUB_OFFLINE=1 no request is sent.
      huggingface_hub's progress bars are left on. The result is the cache's snapshot folder
      of one commit.

    Why ``hf_hub_download`` per file and not ``snapshot_download(allow_patterns=files)``: it
    needs only the ``/resolve`` endpoint (what transformers uses too, so a model transformers
    cached is found the same way), it sends fewer requests (no repo-info or tree listing), and
    a missing file surfaces as an EntryNotFound for that very file, which gives the precise
    message (e.g. "no model.safetensors: safetensors only"). To keep the files of one
    checkpoint consistent, the first file resolves ``revision`` to a commit and the others are
    fetched at that commit sha; a cached commit sha needs no request at all.

    Raises WeightsError with one sentence saying what is wrong and what to do: unknown repo,
    gated/private repo without a token, revision or file not found, a repo or folder without
    model.safetensors (pickle checkpoints are refused), not cached while offline or the Hub
    unreachable, a path that is not a folder, a folder missing files.
    """
    return fetch(name_or_path, revision, files).folder


def fetch(name_or_path, revision=None, files=CHECKPOINT_FILES) -> Fetched:
    """What `resolve` does, also saying whether a file was downloaded: one that was not in
    huggingface_hub's cache before. A local folder, a cached model and an offline run download
    nothing, however long the Hub took to answer its questions."""
    files = tuple(files)
    if not files:
        raise ValueError("resolve() needs at least one file name in `files`")
    text = os.fspath(name_or_path)
    _check_name(text)
    _check_revision(revision)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision is not None:
            raise WeightsError(f"{text} is a local folder, so revision {revision!r} cannot be "
                               f"applied; drop the revision or pass a Hub repo id")
        return Fetched(_check_folder(path, files), downloaded=False)
    if path.exists():
        raise WeightsError(f"{text} is a file, not a folder; pass the folder that holds "
                           f"{', '.join(files)}, or a Hub repo id")
    if (isinstance(name_or_path, os.PathLike) or text.startswith(("/", ".", "~"))
            or "\\" in text or text.count("/") > 1):
        raise WeightsError(f"folder {text} does not exist; pass an existing folder, a Hub repo "
                           f"id such as openai-community/gpt2, or one of {', '.join(SHORT_NAMES)}")
    if ".." in text.split("/"):
        raise WeightsError(f"{text!r} is not a Hub repo id: it has a '..' segment; pass "
                           f"'owner/name', or an existing folder")
    return _download(text, SHORT_NAMES.get(text, text), revision, files)


def _check_name(text: str) -> None:
    """WeightsError for a model name no folder or Hub repo can have: empty, control characters."""
    if not text.strip():
        raise WeightsError("the model name is empty; pass gpt2 (or another short name), a Hub "
                           "repo id such as openai-community/gpt2, or a folder (. for this one)")
    if _CONTROL.search(text):
        raise WeightsError(f"the model name {text!r} contains a control character; pass a short "
                           f"name, a Hub repo id or a folder")


def _check_revision(revision) -> None:
    """WeightsError for a revision that is no git branch, tag or sha, before huggingface_hub
    stores it as a file path (refs/<revision>) in its cache: empty, '.' or '..' segments,
    a leading or doubled '/', a backslash, control characters."""
    if revision is None:
        return
    if (not isinstance(revision, str) or _CONTROL.search(revision) or "\\" in revision
            or any(part in ("", ".", "..") for part in revision.split("/"))):
        raise WeightsError(f"revision {revision!r} is not a branch, tag or commit sha (no empty, "
                           f"'.' or '..' path segments, backslashes or control characters); pass "
                           f"e.g. main, v1.0 or a 40-hex commit sha")


def _check_folder(folder: Path, files) -> Path:
    missing = [name for name in files if not (folder / name).is_file()]
    if not missing:
        return folder
    if "model.safetensors" in missing:
        if (folder / "model.safetensors.index.json").exists():
            raise WeightsError(f"{folder} holds a sharded checkpoint "
                               f"(model.safetensors.index.json); gpt2numba loads a single "
                               f"model.safetensors: merge the shards")
        pickles = [name for name in _PICKLES if (folder / name).exists()]
        if pickles:
            raise WeightsError(f"{folder} has {pickles[0]} but no model.safetensors; "
                               f"{_NO_PICKLES}: convert it to safetensors or use a repo that "
                               f"publishes model.safetensors")
    raise WeightsError(f"folder {folder} lacks {', '.join(missing)}; a gpt2numba model folder "
                       f"needs {', '.join(files)}")


def _download(name: str, repo_id: str, revision, files) -> Fetched:
    # Imported here: loading from a local folder should not pay for importing the Hub client.
    from huggingface_hub import hf_hub_download

    repo = f"Hub repo {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    folder = None
    for filename in files:
        # After the first file, pin the others to the commit it resolved to (its snapshot folder).
        pinned = revision if folder is None else folder.name
        started = time.time()
        try:
            if folder is None:
                cached = _files_in_cache(repo_id)   # checks repo_id, as huggingface_hub does
                _check_reachable(repo_id, filename, revision, repo)
            local = Path(hf_hub_download(repo_id, filename, revision=pinned))
        except Exception as error:
            explained = (_repo_error(error, name, repo_id, revision, repo)
                         or _file_error(error, filename, files, repo))
            if explained is None:
                raise
            raise explained from error
        _verify_fresh_download(local, started, f"{filename} of {repo}")
        if folder is None:
            folder = local.parent
    return Fetched(folder, downloaded=bool(_files_in_cache(repo_id) - cached))


def _repo_error(error, name, repo_id, revision, repo) -> WeightsError | None:
    """The WeightsError that explains a huggingface_hub error about the repo or the revision
    (`repo` names both), or None for another error."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, HFValidationError):
        return WeightsError(f"{name!r} is neither an existing folder nor a valid Hub repo id "
                            f"('owner/name'); check the spelling")
    if isinstance(error, GatedRepoError):   # before its base class RepositoryNotFoundError
        return WeightsError(f"{repo} is gated and this request was not authorised; ask for "
                            f"access at {constants.ENDPOINT}/{repo_id} and set HF_TOKEN to a "
                            f"token of that account")
    if isinstance(error, RepositoryNotFoundError):
        local_hint = "" if "/" in repo_id else " and is not a local folder either"
        return WeightsError(f"{repo} does not exist{local_hint} (or it is private and no valid "
                            f"HF_TOKEN was sent); check the name, e.g. openai-community/gpt2, "
                            f"or set HF_TOKEN for a private repo")
    if isinstance(error, DisabledRepoError):
        return WeightsError(f"{repo} has been disabled by its owner; use another repo")
    if isinstance(error, RevisionNotFoundError):
        return WeightsError(f"revision {revision or 'main'!r} was not found in Hub repo "
                            f"{repo_id!r}; pass an existing branch, tag or commit sha")
    return None


def _file_error(error, filename, files, repo) -> WeightsError | None:
    """The WeightsError that explains an error in fetching `filename` of `repo` (missing, not
    cached, refused, cut off, not written), or None for another error. Called after
    _repo_error, whose errors come first where classes overlap."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
    )

    if isinstance(error, RemoteEntryNotFoundError):
        if filename == "model.safetensors":
            return WeightsError(f"{repo} has no model.safetensors; {_NO_PICKLES}: use a repo "
                                f"that publishes model.safetensors")
        return WeightsError(f"{repo} has no {filename}; gpt2numba needs {', '.join(files)} in "
                            f"the repo")
    if isinstance(error, LocalEntryNotFoundError):
        if constants.is_offline_mode():
            return WeightsError(f"{filename} of {repo} is not in the local cache and "
                                f"HF_HUB_OFFLINE=1 forbids downloading it; unset HF_HUB_OFFLINE "
                                f"to download it once, or pass a local folder")
        return WeightsError(f"{filename} of {repo} is not in the local cache and the Hub "
                            f"cannot be reached; connect, or set HF_HUB_OFFLINE=1 after "
                            f"downloading it once, or pass a local folder")
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code
        if status == 401:
            return WeightsError(f"the Hub refused the token sent for {repo} (HTTP 401); check "
                                f"HF_TOKEN or log in again")
        return WeightsError(f"the Hub answered HTTP {status} for {filename} of {repo}; try "
                            f"again later")
    if isinstance(error, httpx2.HTTPError):
        return WeightsError(f"downloading {filename} of {repo} failed ({error}); check the "
                            f"connection and try again")
    if isinstance(error, OSError):  # disk full, cache not writable, size check failed
        return WeightsError(f"downloading {filename} of {repo} into the cache failed "
                            f"({error}); check the disk space and permissions of "
                            f"{constants.HF_HUB_CACHE}")
    return None


def _files_in_cache(repo_id) -> set:
    """The files that hold data in huggingface_hub's cache folder of `repo_id`: its blobs, and
    the snapshot files of a cache without symlinks (where a downloaded file is moved)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    repo = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    return {path for folder in ("blobs", "snapshots") for path in (repo / folder).rglob("*")
            if path.is_file() and not path.is_symlink() and path.suffix != ".incomplete"}


# How long the reachability check waits to connect: a Hub that answers connects in well under
# a second; HF_HUB_ETAG_TIMEOUT, when the user sets it, takes precedence.
_CONNECT_SECONDS = 4


def _check_reachable(repo_id, filename, revision, repo):
    """Fail fast when `filename` must be downloaded and the Hub cannot be connected to.

    hf_hub_download retries a file that is not cached five times with backoff (about 24 s and
    eleven log lines) before it gives up on an unreachable Hub; its retry count is not a
    setting. So before the first download, one HEAD without retries (huggingface_hub's own
    get_hf_file_metadata, proxies and token honoured) tells whether the Hub can be reached.
    Nothing is checked when the file is cached (huggingface_hub then falls back to the cache
    quickly by itself) or offline. Only a failure to connect counts: any answer, even an
    error or a slow one, is left to hf_hub_download, which explains it precisely.
    """
    import httpx2
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache

    if constants.is_offline_mode() or isinstance(
            try_to_load_from_cache(repo_id, filename, revision=revision), str):
        return
    timeout = (constants.HF_HUB_ETAG_TIMEOUT
               if constants.HF_HUB_ETAG_TIMEOUT != constants.DEFAULT_ETAG_TIMEOUT
               else _CONNECT_SECONDS)
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=timeout)
    except (httpx2.ConnectError, httpx2.ConnectTimeout) as error:
        raise WeightsError(f"the Hub at {constants.ENDPOINT} cannot be reached ({error}) and "
                           f"{repo} is not in the local cache; connect, or pass a local folder, "
                           f"or download it once where the Hub is reachable and set "
                           f"HF_HUB_OFFLINE=1 (see 'gpt2numba download')") from error
    except Exception:  # any answer: hf_hub_download reports it precisely
        return


def _verify_fresh_download(local: Path, started: float, what: str) -> None:
    """Check a blob huggingface_hub wrote since `started` against the sha256 it is named by.

    LFS files (model.safetensors) are stored as blobs/<sha256 the Hub gave as their ETag>, with
    snapshots/<commit>/<file> a link to the blob. huggingface_hub checks only the size. A blob
    cached before this call is not hashed again (it was checked when it came); a cache without
    symlinks holds no blob name to check against. On a mismatch the blob and its link are
    deleted, so the next attempt downloads again.
    """
    blob = local.resolve()
    if not _SHA256.fullmatch(blob.name) or blob.stat().st_mtime < started - _CLOCK_SLACK:
        return
    digest = hashlib.sha256()
    with open(blob, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != blob.name:
        local.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise WeightsError(f"the downloaded {what} does not match the sha256 the Hub gave for it "
                           f"({blob.name[:12]}..., got {digest.hexdigest()[:12]}...); it was "
                           f"corrupted on the way and has been deleted: download it again")
