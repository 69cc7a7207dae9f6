"""The machinery behind one seam (gpt2numba/runtime.py): the reading path imports none of it,
no module outside kernels/ imports a private one, every kernel call runs inside it, and a load
reports where its seconds went."""

import ast
from pathlib import Path

import numba
import pytest

import gpt2numba
import gpt2numba.kernels
import gpt2numba.weights
from gpt2numba import GPT2, model

PACKAGE = Path(gpt2numba.__file__).parent
# The installed package's modules by name: gpt2numba's, and its kernels' and weights' (which an
# editable install finds in the clone's top-level kernels/ and weights/).
MODULES = {
    ".".join((root, *path.relative_to(folder).with_suffix("").parts))
    .removesuffix(".__init__"): path
    for root, folder in [("gpt2numba", PACKAGE),
                         ("gpt2numba.kernels", Path(gpt2numba.kernels.__file__).parent),
                         ("gpt2numba.weights", Path(gpt2numba.weights.__file__).parent)]
    for path in sorted(folder.rglob("*.py"))
    if root != "gpt2numba" or path.parent.name != "kernels" and path.parent.name != "weights"
}
MACHINERY = {"gpt2numba.compiling", "gpt2numba.compiler_process", "gpt2numba.heap",
             "gpt2numba.kernels.cache", "gpt2numba.kernels.threads"}
# The modules a reader reads for the math and the face: none of them touches the machinery.
READING_PATH = ["gpt2numba.model", "gpt2numba.params", "gpt2numba.score", "gpt2numba.generate",
                "gpt2numba.sampling", "gpt2numba.blocks", "gpt2numba.cli.run",
                "gpt2numba.cli.score"]


def imported_modules(name):
    """Every module the module `name` imports (absolute names; relative ones resolved)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                 *filter(None, [node.module])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_module_list_is_the_installed_package():
    assert {"gpt2numba.model", "gpt2numba.runtime", "gpt2numba.cli.run",
            "gpt2numba.kernels.linear", "gpt2numba.kernels._jit", "gpt2numba.weights.hub"} <= set(
        MODULES)


def test_relative_imports_are_resolved():
    assert "gpt2numba.kernels._jit.kernel" in imported_modules("gpt2numba.kernels.linear")
    assert "gpt2numba.kernels.attention" in imported_modules("gpt2numba.kernels")


@pytest.mark.parametrize("name", [name for name in MODULES
                                  if not name.startswith("gpt2numba.kernels")])
def test_no_module_outside_kernels_imports_a_private_kernels_module(name):
    private = [module for module in imported_modules(name)
               if module.startswith("gpt2numba.kernels._")]
    assert private == []


@pytest.mark.parametrize("name", READING_PATH)
def test_the_reading_path_imports_no_machinery(name):
    assert imported_modules(name) & MACHINERY == set()


def test_scoring_runs_its_log_softmax_with_the_models_threads(tiny_checkpoint, monkeypatch):
    """head_log_softmax_at is a parallel kernel too: it runs inside the runtime, as the
    forward."""
    threads_seen = []
    real = model.head_log_softmax_at

    def recording(h, wte, targets):
        threads_seen.append(numba.get_num_threads())
        return real(h, wte, targets)

    monkeypatch.setattr(model, "head_log_softmax_at", recording)
    gpt = GPT2.from_pretrained(tiny_checkpoint, threads=1)
    numba.set_num_threads(2)
    gpt.score_ids(list(range(1000, 1100)), stride=16)
    assert threads_seen and set(threads_seen) == {1}
    assert numba.get_num_threads() == 2   # the caller's setting, restored


def test_a_local_load_reports_no_download(tiny_checkpoint):
    report = GPT2.from_pretrained(tiny_checkpoint).load_report
    assert report.download_seconds is None
    assert report.load_seconds > 0
