"""A local fake of the Hugging Face Hub's HTTP protocol, and the pytest fixture `hub` serving it.

The server is real HTTP on 127.0.0.1 (http.server.ThreadingHTTPServer, port 0), answering the
way huggingface.co does, so huggingface_hub runs unmodified against it with HF_ENDPOINT set:

- ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``: the file, with ``X-Repo-Commit``
  (40-hex sha), a quoted ``ETag`` (git blob sha1, or the sha256 for LFS-like files, which also
  get ``X-Linked-Etag`` and ``X-Linked-Size`` as the Hub sends them), ``Content-Length`` and
  ``Accept-Ranges: bytes``; ``Range: bytes=a-b`` / ``bytes=a-`` answered 206 (used by
  huggingface_hub to resume). The revision may be a branch/tag name or a commit sha.
- ``GET /api/models/{repo_id}[/revision/{revision}]``: JSON with ``id``, ``sha``, ``siblings``
  (``snapshot_download``, ``model_info`` and transformers ask for it), and
  ``GET /api/models/{repo_id}/tree/{revision}``: the JSON list of ``{type, path, size, oid,
  lfs}`` (``snapshot_download`` asks it with ``?recursive=true``); a sub-folder of the tree is
  404 EntryNotFound (repos here are flat).
- Errors as the Hub gives them: missing repo -> 401 ``X-Error-Code: RepoNotFound``; unknown
  revision -> 404 ``RevisionNotFound``; missing file -> 404 ``EntryNotFound`` (with
  ``X-Repo-Commit``); a private repo without its token -> 401 ``RepoNotFound``; a gated repo
  without a token -> 401 ``GatedRepo``, with a wrong token -> 403 ``GatedRepo``.

Every request is recorded, so a test can assert that nothing was sent; ``delay`` seconds (0 by
default) pass before each answer, as from a slow or distant Hub.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is first imported
(into ``huggingface_hub.constants``); in the pytest process it is usually imported already
(transformers imports it), so setting the variables there would not reach it. The honest and
realistic way is what users do: run the code under test in a fresh process with the
environment set. ``hub.run(code)`` does that, and the fixture also exports HF_ENDPOINT and
HF_HOME to the test's environment, so any subprocess (e.g. the ``gpt2numba`` CLI) inherits them.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from support.paths import REPO_ROOT

_SHA = re.compile(r"[0-9a-f]{40}")
_LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".pt", ".ckpt")
_RESOLVE = re.compile(r"/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")
_API = re.compile(r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)"
                  r"(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/(?P<sub>.+))?)?")
# Variables that would make a subprocess talk to another Hub or cache, or change its mode.
_CLEARED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_HUB_DISABLE_XET")


class _File:
    """One served file: its bytes' path, size, git blob sha1, and sha256 if LFS-like."""

    def __init__(self, path: Path):
        self.path = Path(path)
        data = self.path.read_bytes()
        self.size = len(data)
        self.blob_id = hashlib.sha1(b"blob %d\0" % self.size + data).hexdigest()
        self.lfs = self.path.name.endswith(_LFS_SUFFIXES) or self.size > 10 * 2**20
        self.sha256 = hashlib.sha256(data).hexdigest() if self.lfs else None

    @property
    def etag(self):
        return self.sha256 if self.lfs else self.blob_id


class _Repo:
    def __init__(self, token=None, gated=False):
        self.token, self.gated = token, gated
        self.refs = {}     # branch / tag name -> commit sha
        self.commits = {}  # commit sha -> {filename: _File}


class FakeHub:
    """The server. Use it through the ``hub`` fixture, or as ``with FakeHub(home) as hub:``.

    Attributes:
        url: the endpoint, e.g. "http://127.0.0.1:41234" (what HF_ENDPOINT is set to).
        home: the HF_HOME folder of this test (the cache is ``home / "hub"``).
        requests: list of (method, path) tuples, in arrival order; path includes the query.
        headers: list of dicts of the request headers (lower-case names), parallel to requests.
        delay: seconds each request waits before it is answered (0.0).
    """

    def __init__(self, home, repos=None):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.requests = []
        self.headers = []
        self.delay = 0.0
        self._repos = {}
        self.url = None
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        for repo_id, revisions in (repos or {}).items():
            self.add_repo(repo_id, revisions)

    # -- content --------------------------------------------------------------------------

    def add_repo(self, repo_id, revisions, *, token=None, gated=False):
        """Serve a repo and return the commit sha of its "main" (or first) revision.

        ``revisions`` is a folder (served as branch "main": every file directly in it), or a
        dict ``{revision: content}`` where revision is a branch/tag name or a 40-hex commit
        sha and content is a folder, a dict ``{filename: Path}``, or the name of another
        revision of the dict (an alias, e.g. a tag pointing at a branch's commit). A named
        revision's commit sha is derived from the repo id and the files' contents, so equal
        content gives the same sha, like git; look it up with ``commit()``.

        ``token``: the repo is private (or, with ``gated=True``, gated) and only requests with
        ``Authorization: Bearer <token>`` may read it (what HF_TOKEN makes huggingface_hub
        send).
        """
        if isinstance(revisions, (str, os.PathLike)):
            revisions = {"main": revisions}
        repo = _Repo(token=token, gated=gated)
        aliases = {}
        for rev, content in revisions.items():
            if isinstance(content, str) and content in revisions:
                aliases[rev] = content
                continue
            if isinstance(content, (str, os.PathLike)):
                content = {p.name: p for p in sorted(Path(content).iterdir()) if p.is_file()}
            files = {name: _File(path) for name, path in content.items()}
            if _SHA.fullmatch(rev):
                sha = rev
            else:
                digest = hashlib.sha1(repo_id.encode())
                for name in sorted(files):
                    digest.update(f"\0{name}\0{files[name].blob_id}".encode())
                sha = digest.hexdigest()
                repo.refs[rev] = sha
            repo.commits[sha] = files
        for rev, target in aliases.items():
            repo.refs[rev] = repo.refs.get(target, target)
        with self._lock:
            self._repos[repo_id] = repo
        first = "main" if "main" in revisions else next(iter(revisions))
        return self.commit(repo_id, first)

    def serve_instead(self, repo_id, filename, path, revision="main"):
        """Serve the bytes of ``path`` as ``filename`` under the original file's ETag and size:
        a download corrupted on the way, or a server that lies about the content."""
        file = self._repos[repo_id].commits[self.commit(repo_id, revision)][filename]
        if Path(path).stat().st_size != file.size:
            raise ValueError("serve_instead needs a file of the original's size")
        file.path = Path(path)

    def commit(self, repo_id, revision="main"):
        """The 40-hex commit sha that ``revision`` of ``repo_id`` resolves to."""
        repo = self._repos[repo_id]
        return revision if revision in repo.commits else repo.refs[revision]

    def clear(self):
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()

    # -- environment for the code under test -------------------------------------------------

    def env(self, offline=False, token=None, **extra):
        """A copy of os.environ for a subprocess talking to this Hub with this test's cache.

        Sets HF_ENDPOINT and HF_HOME, sets HF_HUB_OFFLINE=1 if ``offline``, HF_TOKEN if
        ``token``, and clears variables that would redirect the cache or change the mode
        (HF_HUB_CACHE, HF_TOKEN, ...). ``extra`` variables are added last.
        """
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        env["HF_ENDPOINT"] = self.url
        env["HF_HOME"] = str(self.home)
        if offline:
            env["HF_HUB_OFFLINE"] = "1"
        if token is not None:
            env["HF_TOKEN"] = token
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, code, *args, offline=False, token=None, timeout=120, **extra_env):
        """Run ``python -c code *args`` in a fresh process with ``env(offline, token, ...)``.

        ``args`` land in the child's ``sys.argv[1:]``. Returns the subprocess.CompletedProcess
        (text stdout/stderr, not checked: look at ``returncode`` yourself). The cwd is the repo
        root.
        """
        command = [sys.executable, "-c", code, *map(str, args)]
        return subprocess.run(command, env=self.env(offline, token, **extra_env), cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, code, *args, offline=False, token=None, **extra_env):
        """Like ``run`` but start the process and return it (subprocess.Popen, text pipes).

        For slow checks that can run while other tests do: ``out, err = proc.communicate()``.
        """
        command = [sys.executable, "-c", code, *map(str, args)]
        return subprocess.Popen(command, env=self.env(offline, token, **extra_env), cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # -- server ---------------------------------------------------------------------------------

    def start(self):
        """Start serving on 127.0.0.1 on a free port, in a daemon thread."""
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop the server and close its socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, method, path, headers):
        with self._lock:
            self.requests.append((method, path))
            self.headers.append({k.lower(): v for k, v in headers.items()})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body):
        self.fake._record(self.command, self.path, self.headers)
        time.sleep(self.fake.delay)
        path = unquote(urlsplit(self.path).path)
        if m := _API.fullmatch(path):
            return self._api(m["repo"], m["kind"] or "revision", m["rev"] or "main", m["sub"],
                             body)
        if m := _RESOLVE.fullmatch(path):
            return self._resolve(m["repo"], m["rev"], m["file"], body)
        if path == "/api/agent-harnesses":  # huggingface_hub >= 2 fetches it once a day
            return self._reply(200, json.dumps({"standardEnvVars": [], "harnesses": {}}).encode(),
                               body, {"Content-Type": "application/json"})
        self._reply(404, b"Not Found", body)

    def _repo(self, repo_id, body):
        """The repo, or None after answering the error the Hub gives for it."""
        repo = self.fake._repos.get(repo_id)
        auth = self.headers.get("Authorization")
        if repo is not None and repo.token is not None and auth != f"Bearer {repo.token}":
            if repo.gated:
                status = 401 if auth is None else 403
                self._reply(status, b"gated", body, {
                    "X-Error-Code": "GatedRepo",
                    "X-Error-Message": f"Access to model {repo_id} is restricted. You must have "
                                       f"access to it and be authenticated to access it."})
                return None
            repo = None  # private: indistinguishable from missing, as on the Hub
        if repo is None:
            self._reply(401, b"Repository not found", body, {
                "X-Error-Code": "RepoNotFound",
                "X-Error-Message": "Repository not found"})
        return repo

    def _repo_commit(self, repo_id, rev, body):
        """(repo, commit sha) of repo_id at rev, or None after answering the Hub's error."""
        repo = self._repo(repo_id, body)
        if repo is None:
            return None
        sha = rev if rev in repo.commits else repo.refs.get(rev)
        if sha is None:
            self._reply(404, b"Invalid rev id", body, {
                "X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})
            return None
        return repo, sha

    def _resolve(self, repo_id, rev, filename, body):
        found = self._repo_commit(repo_id, rev, body)
        if found is None:
            return
        repo, sha = found
        file = repo.commits[sha].get(filename)
        if file is None:
            return self._reply(404, b"Entry not found", body, {
                "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found",
                "X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{file.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if file.lfs:
            headers.update({"X-Linked-Etag": f'"{file.sha256}"', "X-Linked-Size": str(file.size)})
        start, end, status = 0, file.size, 200
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            end = min(int(ranged[2]) + 1, file.size) if ranged[2] else file.size
            if start >= file.size or start >= end:
                return self._reply(416, b"", body, {"Content-Range": f"bytes */{file.size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if body:
            with open(file.path, "rb") as f:
                f.seek(start)
                remaining = end - start
                while remaining:
                    chunk = f.read(min(remaining, 1 << 20))
                    self.wfile.write(chunk)
                    remaining -= len(chunk)

    def _api(self, repo_id, kind, rev, sub, body):
        found = self._repo_commit(repo_id, rev, body)
        if found is None:
            return
        repo, sha = found
        files = repo.commits[sha]
        if sub:  # a folder of the tree: only top-level files are served, so none exists
            return self._reply(404, b"Entry not found", body, {
                "X-Error-Code": "EntryNotFound", "X-Error-Message": f"{sub} does not exist"})
        if kind == "revision":
            data = {"id": repo_id, "modelId": repo_id, "sha": sha,
                    "private": repo.token is not None,
                    "gated": "manual" if repo.gated else False, "disabled": False,
                    "siblings": [{"rfilename": name} for name in sorted(files)]}
        else:
            data = []
            for name in sorted(files):
                entry = {"type": "file", "path": name, "size": files[name].size,
                         "oid": files[name].blob_id}
                if files[name].lfs:
                    entry["lfs"] = {"oid": files[name].sha256, "size": files[name].size,
                                    "pointerSize": 134}
                data.append(entry)
        self._reply(200, json.dumps(data).encode(), body, {"Content-Type": "application/json"})

    def _reply(self, status, content, body, headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running FakeHub with an empty cache, for one test.

    The server listens on 127.0.0.1; HF_ENDPOINT (= ``hub.url``) and HF_HOME (= ``hub.home``,
    a fresh tmp folder) are exported with monkeypatch so subprocesses inherit them, and
    HF_HUB_OFFLINE, HF_TOKEN, HF_HUB_CACHE and similar are removed. The server is shut down at
    the end of the test. API (see FakeHub):

        sha = hub.add_repo("owner/name", folder)                # served as branch "main"
        hub.add_repo("owner/name", {"main": folder_a, "v1": folder_b, "tag": "v1"})
        hub.add_repo("owner/private", folder, token="hf_x")     # private; gated=True: gated
        hub.commit("owner/name", "v1")                          # -> 40-hex sha
        hub.serve_instead("owner/name", "model.safetensors", other)  # same size, other bytes
        result = hub.run("import sys; from gpt2numba import weights; "
                         "print(weights.resolve(sys.argv[1]))",
                         "owner/name", offline=False, token=None)  # -> CompletedProcess
        proc = hub.popen(code, *args, offline=True)             # same, in the background
        subprocess.run(["gpt2numba", ...], env=hub.env(offline=True))  # any other command
        hub.requests  # [("HEAD", "/owner/name/resolve/main/config.json"), ("GET", ...), ...]
        hub.clear()   # forget recorded requests
        # online, a fresh HF_HOME also shows huggingface_hub's ("GET", "/api/agent-harnesses")

    Every test module has it: conftest registers this module as a pytest plugin.
    Code must run in a subprocess: huggingface_hub reads HF_ENDPOINT/HF_HOME/HF_HUB_OFFLINE
    at import time, so the pytest process itself does not see them.
    """
    fake = FakeHub(tmp_path / "hf_home").start()
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.setenv("HF_HOME", str(fake.home))
    try:
        yield fake
    finally:
        fake.stop()
