"""The README's code blocks, run as a reader would run them, so the README cannot drift from
the program.

A random GPT-2 (2 layers, n_embd 64, n_positions 1024 like gpt2's, the real vocabulary) is
served as openai-community/gpt2 by the local Hub (tests/support/hub_server.py), so "gpt2" in
the README means it. Each ```python block runs as a script in a fresh process; each ```sh
block's gpt2numba commands run in bash with the package's scripts first on PATH. Not run: the
venv and pip set-up steps (tests reach no package index), ./scripts/test.sh (the suite itself),
and untagged blocks, which are transcripts of output from the real gpt2 weights.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import VOCAB_DIR

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$", re.M | re.S)
SET_UP = re.compile(r"^(python3 -m venv|\S*pip install|\./scripts/test\.sh)")


def blocks(lang):
    return [m["code"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))
            if m["lang"] == lang]


def shell_commands():
    """The gpt2numba commands of the sh blocks: `a && b` chains split, set-up steps left out,
    `.venv/bin/gpt2numba` as the installed `gpt2numba`."""
    commands = []
    for code in blocks("sh"):
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
    return hub


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_blocks_run_as_scripts(gpt2_hub, tmp_path, index):
    code = blocks("python")[index]
    done = subprocess.run([sys.executable, "-c", code], env=gpt2_hub.env(), cwd=tmp_path,
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
