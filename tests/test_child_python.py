"""python_command starts a module of the package without the current folder on sys.path, in
both of its forms: -P (3.11+) and the -c line that 3.10 gets."""

import subprocess
import sys

import pytest

from gpt2numba import child_python
from support.cli import users_env


@pytest.mark.parametrize("version", [(3, 11), (3, 10)])
def test_the_child_runs_the_module_without_the_current_folder(version, tmp_path, monkeypatch):
    monkeypatch.setattr(child_python.sys, "version_info", version)
    command = child_python.python_command("gpt2numba.__main__", "--help")
    assert command[1] == ("-P" if version >= (3, 11) else "-c")
    (tmp_path / "click.py").write_text(   # what the command line imports first
        "import pathlib\npathlib.Path(__file__).with_name('imported').touch()\n")
    done = subprocess.run(command, cwd=tmp_path, env=users_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: gpt2numba" in done.stdout
    assert not (tmp_path / "imported").exists()


def test_the_arguments_follow_as_strings():
    assert child_python.python_command("gpt2numba.x", 1, "a")[-2:] == ["1", "a"]
    assert child_python.python_command("gpt2numba.x")[0] == sys.executable
