"""The test processes import what users import: the installed gpt2numba, and PyPI's `kernels`.

The repository keeps kernels/ at its top level. A process with the repository root on sys.path
(pytest's rootdir insertion, `python -m pytest`, `python -c` started in the root) imports that
folder as `kernels`, and transformers, which imports PyPI's `kernels`, fails. These checks fail
in such a process: the pytest process itself, and a child started as the tests start theirs.
"""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from support.paths import REPO_ROOT

# Prints, one per line: the resolved sys.path entries ('' is the current folder) and the file of
# `kernels`, after importing gpt2numba's own.
REPORT = """
import importlib, os, sys
from pathlib import Path
for entry in sys.path:
    print("path", Path(entry or os.getcwd()).resolve())
import gpt2numba.kernels
kernels = importlib.import_module("kernels")   # PyPI's, which transformers imports
print("kernels", Path(kernels.__file__).resolve())
"""


def pypi_kernels_files() -> set[Path]:
    """The files PyPI's `kernels` distribution installed."""
    distribution = importlib.metadata.distribution("kernels")
    return {Path(distribution.locate_file(file)).resolve() for file in distribution.files}


def check(report: str):
    lines = [line.split(" ", 1) for line in report.splitlines()]
    paths = [Path(value) for key, value in lines if key == "path"]
    assert REPO_ROOT not in paths, (
        f"the repository root {REPO_ROOT} is on sys.path, so its kernels/ shadows PyPI's "
        f"`kernels`: run the tests with ./scripts/test.sh (or .venv/bin/pytest), not "
        f"`python -m pytest`")
    kernels = next(Path(value) for key, value in lines if key == "kernels")
    assert kernels in pypi_kernels_files(), (
        f"`import kernels` found {kernels}, not PyPI's kernels package")


def test_the_pytest_process_imports_pypis_kernels_and_not_the_repository_root(capsys):
    exec(REPORT, {})
    check(capsys.readouterr().out)


def test_a_child_started_in_the_repository_root_imports_pypis_kernels():
    run = subprocess.run([sys.executable, "-c", REPORT], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    check(run.stdout)


def test_transformers_imports_in_a_child_started_in_the_repository_root():
    run = subprocess.run([sys.executable, "-c", "from transformers import GPT2LMHeadModel"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
