"""resolve() against a real HTTP server that speaks the Hub's protocol
(tests/support/hub_server.py).

huggingface_hub is never mocked: each load runs in a fresh process with HF_ENDPOINT pointing at
the local server and HF_HOME at this test's cache, exactly as a user's process would.
"""

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import numpy as np
import pytest

from gpt2numba.config import GPT2Config
from gpt2numba.weights import CHECKPOINT_FILES, TOKENIZER_FILES, load_tensors
from support.checkpoints import make_checkpoint
from support.hub_server import FakeHub

# Runs in the child: resolve (and optionally load) each case, print one JSON result per case.
DRIVER = textwrap.dedent("""
    import json, sys
    from gpt2numba import weights
    from gpt2numba.config import GPT2Config
    results = []
    for name, revision, files, load in json.loads(sys.argv[1]):
        try:
            folder = weights.resolve(name, revision, files=tuple(files or weights.CHECKPOINT_FILES))
            result = {"folder": str(folder)}
            if load:
                config = GPT2Config.from_folder(folder)
                tensors = weights.load_tensors(folder, config)
                result["checksum"] = sum(float(t.sum(dtype="float64")) for t in tensors.values())
                result["n_layer"] = config.n_layer
        except weights.WeightsError as error:
            result = {"error": str(error), "cause": type(error.__cause__).__name__}
        results.append(result)
    print(json.dumps(results))
""")


def cases_arg(cases):
    """Each case: name, or (name, revision[, files[, load]]) -> the driver's JSON argument."""
    normalized = []
    for case in cases:
        case = (case,) if isinstance(case, str) else tuple(case)
        name, revision, files, load = case + (None, None, None, False)[len(case):]
        normalized.append([name, revision, files, load])
    return json.dumps(normalized)


def resolve_in_child(hub, *cases, offline=False, token=None, **env):
    """Run the driver on `cases` in a fresh process; returns one dict per case."""
    run = hub.run(DRIVER, cases_arg(cases), offline=offline, token=token, **env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def finish(proc):
    """Wait for a background child started with FakeHub.popen; returns its stdout."""
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def checksum(folder):
    tensors = load_tensors(folder, GPT2Config.from_folder(folder))
    return sum(float(t.sum(dtype=np.float64)) for t in tensors.values())


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    """Two small checkpoints with different weights and depth, and a pickle-only folder."""
    root = tmp_path_factory.mktemp("hub_ckpt")
    a = make_checkpoint(root / "a", seed=0, n_layer=2, vocab_size=1000)
    b = make_checkpoint(root / "b", seed=1, n_layer=1, vocab_size=1000)
    pickle_only = root / "pickle_only"
    pickle_only.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(a / name, pickle_only / name)
    (pickle_only / "pytorch_model.bin").write_bytes(b"PK\x03\x04 a pickle, never loaded")
    return {"a": a, "b": b, "pickle_only": pickle_only,
            "sum_a": checksum(a), "sum_b": checksum(b)}


def snapshot(hub, repo_id, sha):
    return str(hub.home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots" / sha)


def file_requests(hub):
    """Requests for repo files (leaves out huggingface_hub's own /api/agent-harnesses)."""
    return [(method, path) for method, path in hub.requests if "/resolve/" in path]


def test_first_load_downloads_then_offline_load_sends_nothing(hub, ckpts):
    sha = hub.add_repo("openai-community/gpt2", ckpts["a"])
    [first] = resolve_in_child(hub, ("gpt2", None, None, True))
    assert first["folder"] == snapshot(hub, "openai-community/gpt2", sha)
    assert first["checksum"] == ckpts["sum_a"] and first["n_layer"] == 2
    downloaded = {path.rsplit("/", 1)[1] for method, path in file_requests(hub) if method == "GET"}
    assert downloaded == set(CHECKPOINT_FILES)

    hub.clear()
    [offline] = resolve_in_child(hub, ("gpt2", None, None, True), offline=True)
    assert offline == first
    assert hub.requests == []

    # online again: huggingface_hub checks "main" with one HEAD, and downloads nothing
    [again] = resolve_in_child(hub, "gpt2")
    assert again["folder"] == first["folder"]
    assert file_requests(hub) == [("HEAD", "/openai-community/gpt2/resolve/main/config.json")]


def test_short_names_map_to_their_hub_repos(hub, ckpts):
    repos = {"gpt2": "openai-community/gpt2", "gpt2-medium": "openai-community/gpt2-medium",
             "gpt2-large": "openai-community/gpt2-large", "gpt2-xl": "openai-community/gpt2-xl",
             "distilgpt2": "distilbert/distilgpt2"}
    shas = {name: hub.add_repo(repo, ckpts["a"]) for name, repo in repos.items()}
    results = resolve_in_child(hub, *[(name, None, TOKENIZER_FILES) for name in repos])
    for (name, repo), result in zip(repos.items(), results):
        assert result == {"folder": snapshot(hub, repo, shas[name])}
    # a tokenizer-only user does not download the weights
    assert not any(path.endswith(("model.safetensors", "config.json"))
                   for _, path in hub.requests)


def test_revision_pinning_branch_tag_and_commit(hub, ckpts):
    main = hub.add_repo("owner/model", {"main": ckpts["a"], "v1": ckpts["b"], "first": "v1"})
    v1 = hub.commit("owner/model", "v1")
    assert main != v1 and hub.commit("owner/model", "first") == v1
    cases = [("owner/model", None, None, True), ("owner/model", "v1", None, True),
             ("owner/model", "first", None, True), ("owner/model", v1, None, True),
             ("owner/model", main, None, True)]
    results = resolve_in_child(hub, *cases)
    expected = [(main, "sum_a", 2), (v1, "sum_b", 1), (v1, "sum_b", 1), (v1, "sum_b", 1),
                (main, "sum_a", 2)]
    for result, (sha, key, n_layer) in zip(results, expected):
        assert result == {"folder": snapshot(hub, "owner/model", sha), "checksum": ckpts[key],
                          "n_layer": n_layer}

    # all pinned revisions now come from the cache, offline, without a request
    hub.clear()
    assert resolve_in_child(hub, *cases, offline=True) == results
    assert hub.requests == []
    # online, a cached commit sha needs no request either (it cannot have moved)
    resolve_in_child(hub, ("owner/model", v1))
    assert file_requests(hub) == []


def test_files_of_one_load_come_from_one_commit(hub, ckpts):
    hub.add_repo("owner/model", {"main": ckpts["a"]})
    resolve_in_child(hub, "owner/model")
    paths = [path for _, path in file_requests(hub)]
    sha = hub.commit("owner/model")
    # the reachability check and the first file resolve the branch (HEAD, HEAD, GET)...
    assert all(path.endswith("/resolve/main/config.json") for path in paths[:3])
    assert all(f"/resolve/{sha}/" in path for path in paths[3:])  # ...then pinned to its commit


def test_hub_errors_are_one_clear_sentence(hub, ckpts):
    hub.add_repo("owner/model", ckpts["a"])
    hub.add_repo("owner/pickle-only", ckpts["pickle_only"])
    hub.add_repo("owner/gated", ckpts["a"], token="hf_secret", gated=True)
    hub.add_repo("owner/private", ckpts["a"], token="hf_secret")
    missing_repo, single, pickle, pickle_tok, revision, gated, private, entry, invalid = \
        resolve_in_child(hub, "owner/missing", "gpt3", "owner/pickle-only",
                         ("owner/pickle-only", None, TOKENIZER_FILES),
                         ("owner/model", "no-such-branch"), "owner/gated", "owner/private",
                         ("owner/model", None, ["config.json", "tokenizer.json"]), "not a repo!")
    assert missing_repo["cause"] == "RepositoryNotFoundError"
    assert "Hub repo 'owner/missing' does not exist" in missing_repo["error"]
    assert "HF_TOKEN" in missing_repo["error"]
    assert "is not a local folder either" in single["error"]
    assert pickle["cause"] == "RemoteEntryNotFoundError"
    assert "has no model.safetensors" in pickle["error"]
    assert "safetensors checkpoints only" in pickle["error"] and "pickle" in pickle["error"]
    assert "folder" in pickle_tok  # the tokenizer files alone are fine
    assert revision["cause"] == "RevisionNotFoundError"
    assert "revision 'no-such-branch' was not found in Hub repo 'owner/model'" in revision["error"]
    assert gated["cause"] == "GatedRepoError"
    assert "is gated" in gated["error"] and "HF_TOKEN" in gated["error"]
    assert f"{hub.url}/owner/gated" in gated["error"]
    assert private["cause"] == "RepositoryNotFoundError" and "private" in private["error"]
    assert entry["cause"] == "RemoteEntryNotFoundError"
    assert "Hub repo 'owner/model' has no tokenizer.json" in entry["error"]
    assert "neither an existing folder nor a valid Hub repo id" in invalid["error"]
    for result in (missing_repo, single, pickle, revision, gated, private, entry, invalid):
        assert result["error"].count("; ") <= 2 and "\n" not in result["error"]


def test_hf_token_opens_gated_and_private_repos(hub, ckpts):
    gated = hub.add_repo("owner/gated", ckpts["a"], token="hf_secret", gated=True)
    private = hub.add_repo("owner/private", ckpts["a"], token="hf_secret")
    [wrong] = resolve_in_child(hub, "owner/gated", token="hf_wrong")
    assert wrong["cause"] == "GatedRepoError"  # 403: a token, but not one with access
    hub.clear()
    results = resolve_in_child(hub, "owner/gated", "owner/private", token="hf_secret")
    assert results == [{"folder": snapshot(hub, "owner/gated", gated)},
                       {"folder": snapshot(hub, "owner/private", private)}]
    sent = {h.get("authorization") for h, (_, path) in zip(hub.headers, hub.requests)
            if "/resolve/" in path}
    assert sent == {"Bearer hf_secret"}


def test_offline_and_not_cached(hub, ckpts):
    hub.add_repo("owner/model", ckpts["a"])
    [result] = resolve_in_child(hub, "owner/model", offline=True)
    assert result["cause"] == "LocalEntryNotFoundError"
    assert "is not in the local cache" in result["error"]
    assert "HF_HUB_OFFLINE=1" in result["error"] and "local folder" in result["error"]
    assert hub.requests == []


def test_endpoint_that_is_not_a_hub_and_nothing_cached(hub, tmp_path):
    # A server that answers without the Hub's headers (a proxy page, a wrong HF_ENDPOINT).
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=tmp_path))
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        [result] = resolve_in_child(hub, "owner/model", HF_ENDPOINT=endpoint)
    finally:
        server.shutdown()
        server.server_close()
    assert result["error"] == (
        "config.json of Hub repo 'owner/model' is not in the local cache and the Hub cannot be "
        "reached; connect, or set HF_HUB_OFFLINE=1 after downloading it once, or pass a local "
        "folder")


def test_fake_hub_serves_snapshot_download_too(hub, ckpts):
    # For other tests that use snapshot_download: the revision and tree APIs answer like the Hub.
    sha = hub.add_repo("owner/model", {"main": ckpts["a"], "v1": ckpts["b"]})
    run = hub.run("from huggingface_hub import snapshot_download\n"
                  "print(snapshot_download('owner/model', allow_patterns=['*.json', '*.txt']))")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == snapshot(hub, "owner/model", sha)
    paths = [path for _, path in hub.requests]
    assert "/api/models/owner/model/revision/main" in paths
    assert any(path.startswith(f"/api/models/owner/model/tree/{sha}") for path in paths)
    assert not any(path.endswith("model.safetensors") for path in paths)


# Two slow checks run in processes started when this module starts, so that their waiting
# (huggingface_hub's retry backoff, importing torch) overlaps the other tests.
TRANSFORMERS_CACHE = ("from transformers import AutoTokenizer, GPT2LMHeadModel\n"
                      "GPT2LMHeadModel.from_pretrained('owner/model')\n"
                      "AutoTokenizer.from_pretrained('owner/model')")


@pytest.fixture(scope="module", autouse=True)
def background(ckpts, tmp_path_factory):
    """Start the slow children; yields {name: (FakeHub, Popen)}; kills leftovers at the end."""
    root = tmp_path_factory.mktemp("background")
    server = FakeHub(root / "transformers_home").start()
    server.add_repo("owner/model", ckpts["a"])
    children = {"transformers": (server, server.popen(TRANSFORMERS_CACHE))}
    yield children
    for _, proc in children.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    server.stop()


def closed_port_url():
    """An endpoint on 127.0.0.1 where nobody listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_hub_unreachable_and_nothing_cached_fails_fast_in_one_line(hub):
    # Without the reachability check huggingface_hub retried five times with backoff
    # (1+2+4+8+8 s) and logged eleven lines before the error.
    env = hub.env(HF_ENDPOINT=closed_port_url())
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "gpt2numba", "download", "owner/model"], env=env,
                         capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert run.returncode == 1 and run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("gpt2numba: error: the Hub at http://127.0.0.1:")
    assert "cannot be reached" in line and "HF_HUB_OFFLINE=1" in line
    assert seconds < 5, f"took {seconds:.1f} s"


def test_hub_unreachable_but_cached_loads_from_the_cache(hub, ckpts):
    sha = hub.add_repo("owner/model", ckpts["a"])
    [online] = resolve_in_child(hub, ("owner/model", None, None, True))
    [unreachable] = resolve_in_child(hub, ("owner/model", None, None, True),
                                     HF_ENDPOINT=closed_port_url())
    assert unreachable == online
    assert unreachable["folder"] == snapshot(hub, "owner/model", sha)


def test_model_cached_by_transformers_is_used_without_download(background, ckpts):
    server, proc = background["transformers"]
    finish(proc)  # transformers downloaded the model and the tokenizer into the cache
    sha = server.commit("owner/model")
    server.clear()
    [offline] = resolve_in_child(server, ("owner/model", None, None, True), offline=True)
    assert offline["folder"] == snapshot(server, "owner/model", sha)
    assert offline["checksum"] == ckpts["sum_a"]
    assert server.requests == []
    [online] = resolve_in_child(server, "owner/model")
    assert online["folder"] == offline["folder"]
    assert all(method == "HEAD" for method, _ in file_requests(server))  # checked, not fetched
