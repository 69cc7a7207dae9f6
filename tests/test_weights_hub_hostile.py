"""Hostile Hub answers and names: a download whose bytes do not match the sha256 the Hub gave is
deleted and refused; names and revisions that could escape the cache never reach
huggingface_hub. Against the local Hub (tests/support/hub_server.py), through the CLI as a user
runs it."""

import hashlib
import os
import time

import pytest

from gpt2numba.weights import WeightsError, resolve
from support.cli import assert_one_error_line, run_cli

QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": 1}


def flipped_copy(source, target):
    """`source` with one byte of its last tensor changed: same size, loads, other weights."""
    data = bytearray(source.read_bytes())
    data[-3] ^= 0x40
    target.write_bytes(bytes(data))
    return target


def cache_files(hub):
    return {p.relative_to(hub.home) for p in hub.home.rglob("*")}


def test_a_download_that_does_not_match_its_sha256_is_deleted(hub, tiny_checkpoint, tmp_path):
    original = tiny_checkpoint / "model.safetensors"
    sha256 = hashlib.sha256(original.read_bytes()).hexdigest()
    hub.add_repo("someone/tiny", tiny_checkpoint)
    hub.serve_instead("someone/tiny", "model.safetensors",
                      flipped_copy(original, tmp_path / "flipped.safetensors"))
    code, out, err = run_cli(["download", "someone/tiny"], hub.env(**QUIET))
    assert_one_error_line(code, err, 1, "model.safetensors", "sha256", sha256[:12], "deleted")
    assert out == ""
    left = [p.name for p in hub.home.rglob("*")]
    assert sha256 not in left and "model.safetensors" not in left
    # the bad blob is gone, so the next attempt downloads again, and gets the right bytes
    hub.serve_instead("someone/tiny", "model.safetensors", original)
    code, out, err = run_cli(["download", "someone/tiny"], hub.env(**QUIET))
    assert code == 0, err
    assert (hub.home / out.strip() / "model.safetensors").resolve().name == sha256


def test_a_cached_file_is_not_hashed_on_every_load(hub, tiny_checkpoint):
    hub.add_repo("someone/tiny", tiny_checkpoint)
    code, out, err = run_cli(["download", "someone/tiny"], hub.env(**QUIET))
    assert code == 0, err
    blob = (hub.home / out.strip() / "model.safetensors").resolve()
    # Damage the cached blob behind huggingface_hub's back, dated an hour ago: a load that
    # hashed it would refuse it; this one trusts what was checked when it came.
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0x40
    blob.write_bytes(bytes(data))
    hour_ago = time.time() - 3600
    os.utime(blob, (hour_ago, hour_ago))
    code, out, err = run_cli(["download", "someone/tiny"], hub.env(**QUIET))
    assert code == 0, err


def test_a_revision_cannot_write_outside_the_cache(hub, tiny_checkpoint, tmp_path):
    hub.add_repo("someone/tiny", tiny_checkpoint)
    escape = "main/../../../../../escaped"  # from <cache>/models--someone--tiny/refs/ to tmp_path
    outside = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["download", "someone/tiny", "--revision", escape], hub.env(**QUIET))
    assert_one_error_line(code, err, 1, repr(escape), "not a branch, tag or commit sha")
    assert {p.name for p in tmp_path.iterdir()} == outside
    assert not (tmp_path / "escaped").exists()
    assert [path for _, path in hub.requests if "/resolve/" in path] == []


@pytest.mark.parametrize("revision", ["", "..", "/tmp/x", "main/..", "a//b", "./main", "v1\\..",
                                      "main\x00", "main\n", "\x7f"])
def test_revisions_that_are_paths_are_refused_before_the_hub(revision):
    with pytest.raises(WeightsError, match="not a branch, tag or commit sha") as error:
        resolve("someone/tiny", revision=revision)
    assert "\n" not in str(error.value).replace(repr(revision), "")


@pytest.mark.parametrize("name,words", [
    ("", "model name is empty"), ("  ", "model name is empty"),
    ("someone/..", "'..' segment"), ("gpt2\n", "control character"),
    ("some\x00one/x", "control character"), ("\x1b[31mred", "control character"),
])
def test_bad_names_are_refused_before_the_hub(name, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" used to mean this folder
    with pytest.raises(WeightsError, match=words):
        resolve(name)


def test_the_cli_refuses_an_empty_model_name(hub):
    code, _, err = run_cli(["download", ""], hub.env(**QUIET))
    assert_one_error_line(code, err, 1, "model name is empty")
    assert [path for _, path in hub.requests if "/resolve/" in path] == []


def test_a_branch_with_slashes_still_reaches_the_hub(hub, tiny_checkpoint):
    hub.add_repo("someone/tiny", tiny_checkpoint)
    code, _, err = run_cli(["download", "someone/tiny", "--revision", "refs/pr/1"],
                           hub.env(**QUIET))
    assert_one_error_line(code, err, 1, "revision 'refs/pr/1' was not found")
