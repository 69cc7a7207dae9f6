"""gpt2numba as users install it: a wheel in a fresh venv, beside packages that own the names
`kernels` and `weights`.

PyPI has a distribution named `kernels` (Hugging Face's; transformers uses it) whose top-level
package is `kernels`, and people keep a `weights.py` beside their scripts. gpt2numba's own
kernels/ and weights/ folders install as gpt2numba.kernels and gpt2numba.weights, so neither
can replace or shadow them. No network: the wheels are built here, the `kernels` one by hand.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.paths import REPO_ROOT
from support.venvs import venv_with_test_dependencies

# Loads the checkpoint named by argv[1] and prints 8 greedy ids after a fixed prompt.
GENERATE = ("import json, sys\n"
            "from gpt2numba import GPT2\n"
            "model = GPT2.from_pretrained(sys.argv[1])\n"
            "print(json.dumps(model.generate_ids([464, 2068, 7586], 8, stop_at_eos=False)))\n")


def build_wheel(out_dir: Path) -> Path:
    """gpt2numba's wheel, built from this checkout without network (no build isolation)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out_dir), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True)
    return next(out_dir.glob("gpt2numba-*.whl"))


def foreign_kernels_wheel(out_dir: Path) -> Path:
    """A minimal wheel of a distribution `kernels` that owns the top-level package `kernels`."""
    path = out_dir / "kernels-0.1-py3-none-any.whl"
    files = {
        "kernels/__init__.py": 'OWNER = "another distribution"\n',
        "kernels-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: kernels\nVersion: 0.1\n",
        "kernels-0.1.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = "".join(f"{name},,\n" for name in files) + "kernels-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, "kernels-0.1.dist-info/RECORD": record}.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_installs_only_the_gpt2numba_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"gpt2numba", wheel.name.split("-py3")[0] + ".dist-info"}, top_level
    assert "gpt2numba/kernels/linear.py" in names and "gpt2numba/weights/hub.py" in names
    assert "gpt2numba/serve/page.html" in names   # package data: the page `serve` answers / with


def test_works_beside_a_foreign_kernels_package_and_a_users_weights_py(wheel, tiny_checkpoint,
                                                                       tiny_model, tmp_path):
    python = venv_with_test_dependencies(tmp_path / "venv")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
               "--no-deps", "--no-index"]
    subprocess.run([*install, str(wheel)], check=True)
    subprocess.run([*install, str(foreign_kernels_wheel(tmp_path))], check=True)

    project = tmp_path / "users-project"
    project.mkdir()
    (project / "weights.py").write_text(
        'raise ImportError("the user\'s own weights.py was imported")\n')
    (project / "script.py").write_text(GENERATE)
    run = subprocess.run([str(python), "script.py", str(tiny_checkpoint)], cwd=project,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    expected = tiny_model.generate_ids([464, 2068, 7586], 8, stop_at_eos=False)
    assert json.loads(run.stdout) == expected

    check_foreign = "import kernels; print(kernels.OWNER)"
    assert subprocess.check_output([str(python), "-c", check_foreign], cwd=project,
                                   text=True).strip() == "another distribution"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "uninstall", "--quiet",
                    "--yes", "kernels"], check=True)
    still = subprocess.run([str(python), "-c", "from gpt2numba.kernels import linear; "
                            "from gpt2numba.weights import resolve"], cwd=project,
                           capture_output=True, text=True)
    assert still.returncode == 0, still.stderr
