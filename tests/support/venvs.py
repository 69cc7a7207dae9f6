"""Fresh venvs for the tests that install gpt2numba as users do, without network."""

import subprocess
import sys
import sysconfig
from pathlib import Path


def venv_with_test_dependencies(folder) -> Path:
    """A new venv at `folder` (without pip) whose Python finds the test environment's packages
    after its own, so gpt2numba's dependencies need no download; returns its python.

    The test environment's site-packages is a path listed in a .pth file: its own .pth files
    (the editable install's) are not run, so gpt2numba itself is not importable from there.
    """
    folder = Path(folder)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python
