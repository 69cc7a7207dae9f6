"""The README's code blocks, run as a reader would run them, so the README cannot drift from
the program.

A random GPT-2 (2 layers, n_embd 64, n_positions 1024 like gpt2's, the real vocabulary) is
served as openai-community/gpt2 by the local Hub (tests/support/hub_server.py), so "gpt2" in
the README means it. Each ```python block runs as a script in a fresh process; each ```sh
block's gpt2numba commands run in bash with the package's scripts first on PATH; the
```dockerfile block is built and run without Docker (see its test); the Serving section's
blocks, which talk to the README's server at http://127.0.0.1:8000, run while the sh block that
starts it (`gpt2numba serve`) serves, on a port of its own. Not run: the venv and pip set-up
steps (tests reach no package index), ./scripts/test.sh (the suite itself), and untagged or
```text blocks, which are transcripts of output from the real gpt2 weights or need the network.
"""

import ast
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from support.paths import REPO_ROOT, VOCAB_DIR
from support.venvs import venv_with_test_dependencies

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$", re.M | re.S)
SET_UP = re.compile(r"^(python3 -m venv|\S*pip install|\./scripts/test\.sh)")
# An absolute path in the Dockerfile's text: a path in the image, which the test keeps under a
# folder of its own (not the "//" of a URL, nor a path's inner slashes).
IMAGE_PATH = re.compile(r"(?<![\w.~/:-])/(?=[\w.\"']|\s|$)")
SERVED = "http://127.0.0.1:8000"   # the README's server: the blocks that use it run with it up
SERVING = re.compile(r"gpt2numba: serving .* at (http://127\.0\.0\.1:\d+)")


def blocks(lang):
    return [m["code"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))
            if m["lang"] == lang]


def standalone(lang):
    """The blocks that need no server."""
    return [code for code in blocks(lang) if SERVED not in code]


def shell_commands():
    """The gpt2numba commands of the sh blocks: `a && b` chains split, set-up steps left out,
    `.venv/bin/gpt2numba` as the installed `gpt2numba`."""
    commands = []
    for code in standalone("sh"):
        for line in code.splitlines():
            for step in line.split(" && "):
                step = step.strip().replace(".venv/bin/gpt2numba", "gpt2numba")
                if step and not SET_UP.match(step):
                    commands.append(step)
    return commands


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(blocks("python")) >= 2
    assert all("gpt2numba" in command for command in shell_commands())
    assert any(command.startswith("gpt2numba run") for command in shell_commands())


@pytest.fixture(scope="module")
def gpt2_sized_checkpoint(tmp_path_factory):
    from support.checkpoints import make_checkpoint

    assert (VOCAB_DIR / "vocab.json").is_file()
    return make_checkpoint(tmp_path_factory.mktemp("readme-gpt2"), n_positions=1024)


@pytest.fixture
def gpt2_hub(hub, gpt2_sized_checkpoint):
    hub.add_repo("openai-community/gpt2", gpt2_sized_checkpoint)
    hub.add_repo("distilbert/distilgpt2", gpt2_sized_checkpoint)   # for `compare`: the same one
    return hub


@pytest.mark.parametrize("index", range(len(standalone("python"))))
def test_python_blocks_run_as_scripts(gpt2_hub, tmp_path, index):
    code = standalone("python")[index]
    # The Ray block's ray.init() starts a local instance: on 127.0.0.1 only with this variable
    # (Ray's servers bind the node's address, else the machine's network address).
    env = gpt2_hub.env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README python block {index}:\n{code}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() or "def " in code, "the block shows nothing"


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_blocks_have_no_bare_expressions(index):
    """A bare `model.config` shows its value in a REPL and nothing in a script: print it."""
    tree = ast.parse(blocks("python")[index])
    bare = [ast.unparse(node) for node in tree.body
            if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call)]
    assert bare == []


def test_the_library_block_prints_what_its_comments_say(gpt2_hub, tmp_path):
    code = next(code for code in blocks("python") if "from_pretrained" in code
                and "generate" in code)
    done = subprocess.run([sys.executable, "-c", code], env=gpt2_hub.env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "(3, 50257)" in done.stdout and "GPT2('gpt2'" in done.stdout


@pytest.mark.parametrize("index", range(len(shell_commands())))
def test_shell_commands_run(gpt2_hub, tmp_path, index):
    command = shell_commands()[index]
    scripts = Path(sys.executable).parent
    env = gpt2_hub.env(PATH=os.pathsep.join([str(scripts), os.environ.get("PATH", "")]))
    (tmp_path / "chapter1.txt").write_text("It was a bright cold day in April. " * 40)
    (tmp_path / "chapter2.txt").write_text("The clocks were striking thirteen. " * 40)
    done = subprocess.run(["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_the_serving_blocks_run_against_the_server_the_readme_starts(gpt2_hub, tmp_path):
    """The sh block that starts `gpt2numba serve` (on a port the system picks instead of 8000),
    then its other commands (curl) and the python blocks that use the server, each of which
    must succeed and print; then SIGTERM stops the server, which exits 0."""
    [serving] = [code for code in blocks("sh") if SERVED in code]
    start, *commands = serving.strip().splitlines()
    assert start.startswith("gpt2numba serve") and "--port 8000" in start
    clients = [["bash", "-c", command] for command in commands]
    clients += [[sys.executable, "-c", code] for code in blocks("python") if SERVED in code]
    scripts = Path(sys.executable).parent
    env = gpt2_hub.env(PATH=os.pathsep.join([str(scripts), os.environ.get("PATH", "")]))
    server = subprocess.Popen(["bash", "-c", "exec " + start.replace("--port 8000", "--port 0")],
                              env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = served_url(server)
        for client in clients:
            client[-1] = client[-1].replace(SERVED, url)
            done = subprocess.run(client, env=env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0 and done.stdout.strip(), f"{client}\n{done.stderr}"
            assert '"error"' not in done.stdout, done.stdout   # curl -s exits 0 on a 400 too
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


def served_url(server, timeout=600):
    """The URL the server says it serves at, once its /health answers."""
    found = []

    def read():
        for line in server.stderr:
            found.extend(SERVING.findall(line))

    threading.Thread(target=read, daemon=True).start()
    start = time.monotonic()
    while not found and server.poll() is None and time.monotonic() - start < timeout:
        time.sleep(0.1)
    assert found, "the README's server did not start"
    with urllib.request.urlopen(found[0] + "/health", timeout=30) as health:
        assert health.status == 200
    return found[0]


# -- the Dockerfile -------------------------------------------------------------------------------

def dockerfile_steps():
    """The README's ```dockerfile block as (INSTRUCTION, arguments) pairs, in order."""
    [code] = blocks("dockerfile")
    text = re.sub(r"\\\n", " ", code)   # continuation lines
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def in_image(text, root):
    """`text` with each absolute path of the image moved under the folder `root`."""
    return IMAGE_PATH.sub(lambda _: str(root).rstrip("/") + "/", text)


def image_command(arguments, root):
    """A RUN, CMD or ENTRYPOINT's command as argv: the exec form's JSON list, or sh -c."""
    if arguments.startswith("["):
        return [in_image(part, root) for part in json.loads(arguments)]
    return ["sh", "-c", in_image(arguments, root)]


def image_env(arguments, root):
    """ENV KEY=value ... (or the old ENV KEY value) as a dict, its paths in the image."""
    if "=" not in arguments.split(None, 1)[0]:
        key, value = arguments.split(None, 1)
        return {key: in_image(value, root)}
    return {key: in_image(value, root)
            for key, value in (part.split("=", 1) for part in shlex.split(arguments))}


def copy_into_image(arguments, root, workdir):
    """COPY src... dest, the build context being a clone of this repository: its tracked files,
    with their contents in this working tree."""
    *sources, dest = [part for part in shlex.split(arguments) if not part.startswith("--")]
    into = dest.endswith("/") or len(sources) > 1   # a file goes into dest, not as dest
    dest = Path(in_image(posixpath.join(workdir, dest), root))
    for source in sources:
        tracked = subprocess.run(["git", "ls-files", "-z", "--", source], cwd=REPO_ROOT,
                                 check=True, capture_output=True, text=True).stdout
        for name in filter(None, tracked.split("\0")):
            if not (REPO_ROOT / name).is_file():   # deleted in the working tree
                continue
            if name == source:   # a file: into dest/ or as dest
                target = dest / Path(name).name if into else dest
            else:                # a folder's (or the context's) contents: into dest
                target = dest / Path(name).relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, target)


def offline_pip(bin_dir, python):
    """A `pip` in bin_dir for the venv of `python`: the test environment's pip, told to install
    from no index and to build without isolation (the build needs setuptools, from the test
    environment); anything else would need the network."""
    pip = bin_dir / "pip"
    pip.write_text("#!/bin/sh\n"
                   'if [ "$1" = install ]; then shift; '
                   'set -- install --no-index --no-build-isolation "$@"; fi\n'
                   f'exec "{sys.executable}" -m pip --python "{python}" "$@"\n')
    pip.chmod(0o755)


def test_the_readme_has_one_dockerfile_with_a_copy_and_a_command():
    steps = dockerfile_steps()
    assert [instruction for instruction, _ in steps].count("FROM") == 1
    assert any(instruction == "COPY" for instruction, _ in steps)
    assert any(instruction in ("CMD", "ENTRYPOINT") for instruction, _ in steps)


def test_the_dockerfile_builds_and_runs_without_docker(gpt2_hub, tmp_path):
    """The README's Dockerfile, each step run here as Docker would run it in the image.

    No Docker daemon runs here and no image could be pulled, so: the image's file system is a
    folder (every absolute path in the block is moved under it), its Python a fresh venv of
    this Python (FROM is not run) that finds gpt2numba's dependencies in the test environment
    (support.venvs), and the build context a clone of this repository (its tracked files). COPY
    copies; ENV and WORKDIR hold for the later steps; RUN runs its command with the venv's
    scripts first on PATH, and its `pip` is the test environment's pip told --no-index and
    --no-build-isolation (offline_pip: a download is the one thing the test cannot do); then
    the CMD (after the ENTRYPOINT, if any) runs. The local Hub serves the random gpt2.
    """
    root, workdir = tmp_path / "image", "/"   # Docker's first WORKDIR is /
    python = venv_with_test_dependencies(tmp_path / "venv")
    offline_pip(python.parent, python)
    test_scripts = Path(sys.executable).parent   # the test environment's gpt2numba: not on PATH
    path = [str(python.parent)] + [folder for folder in os.environ["PATH"].split(os.pathsep)
                                   if folder and Path(folder) != test_scripts]
    env = gpt2_hub.env(PATH=os.pathsep.join(path))
    entrypoint, cmd = [], []
    for instruction, arguments in dockerfile_steps():
        cwd = Path(in_image(workdir, root))
        cwd.mkdir(parents=True, exist_ok=True)
        if instruction == "FROM":
            continue
        elif instruction == "COPY":
            copy_into_image(arguments, root, workdir)
        elif instruction == "ENV":
            env.update(image_env(arguments, root))
        elif instruction == "WORKDIR":
            workdir = posixpath.join(workdir, arguments)
        elif instruction == "RUN":
            done = subprocess.run(image_command(arguments, root), env=env, cwd=cwd,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"RUN {arguments}\n{done.stdout}\n{done.stderr}"
        elif instruction == "ENTRYPOINT":
            entrypoint = image_command(arguments, root)
        elif instruction == "CMD":
            cmd = image_command(arguments, root)
        else:
            pytest.fail(f"the README's Dockerfile uses {instruction}, which this test cannot run")

    cache = Path(env["NUMBA_CACHE_DIR"])
    if cache.is_relative_to(root):   # the Dockerfile's own: the build compiled the kernels there
        assert any(cache.rglob("*.nbi")), "the image's Numba cache is empty"
    where = subprocess.run([str(python), "-c", "import gpt2numba; print(gpt2numba.__file__)"],
                           env=env, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(python.parents[1]), where.stderr
    cwd = Path(in_image(workdir, root))
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(entrypoint + cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{entrypoint + cmd}\n{done.stderr}"
    assert done.stdout.strip() and "Traceback" not in done.stderr
