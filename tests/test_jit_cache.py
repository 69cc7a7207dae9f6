"""The JIT cache can never stop the program (kernels/_jit.py).

Each case runs in fresh processes with its own NUMBA_CACHE_DIR, as a user's runs would: a
damaged entry is compiled again and rewritten with one line saying so; a read-only populated
cache is used as it is; with no writable folder at all the kernels compile in memory. Read-only
folders are made with a read-only bind mount in a private mount namespace (`unshare --mount`,
as root): chmod does not stop root.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gpt2numba.kernels
from support.numba_cache import copy_without

KERNELS_SOURCE = Path(gpt2numba.kernels.__file__).parent

# Calls one small kernel; prints its result and whether it came from the disk cache.
CALL_KERNEL = ("import numpy as np\n"
               "from gpt2numba.kernels import residual\n"
               "x = np.arange(15, dtype=np.float32).reshape(3, 5)\n"
               "out = residual(x, x)\n"
               "print(float(out.sum()), sum(residual.stats.cache_hits.values()))\n")
EXPECTED_SUM = 2.0 * sum(range(15))


def run_python(code, cache_dir, env=None, prefix=()):
    environment = dict(os.environ if env is None else env)
    if cache_dir is not None:
        environment["NUMBA_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([*prefix, sys.executable, "-c", code], env=environment,
                          capture_output=True, text=True, timeout=300)


def call_kernel(cache_dir, **options):
    """(sum printed, cache hits, stderr lines) of CALL_KERNEL in a fresh process."""
    result = run_python(CALL_KERNEL, cache_dir, **options)
    assert result.returncode == 0, result.stderr
    total, hits = result.stdout.split()
    return float(total), int(hits), result.stderr.splitlines()


def damage(cache_dir, suffix, keep_bytes):
    files = list(Path(cache_dir).rglob(f"*{suffix}"))
    assert files, f"no {suffix} file to damage in {cache_dir}"
    for path in files:
        path.write_bytes(path.read_bytes()[:keep_bytes])


@pytest.mark.parametrize("suffix, keep_bytes", [(".nbc", 100), (".nbc", 0), (".nbi", 0)],
                         ids=["truncated-nbc", "empty-nbc", "empty-nbi"])
def test_a_damaged_entry_is_compiled_again_and_rewritten(tmp_path, suffix, keep_bytes):
    assert call_kernel(tmp_path) == (EXPECTED_SUM, 0, [])
    damage(tmp_path, suffix, keep_bytes)
    total, hits, stderr = call_kernel(tmp_path)
    assert (total, hits) == (EXPECTED_SUM, 0)
    assert len(stderr) == 1 and "damaged" in stderr[0] and "compiling them again" in stderr[0]
    assert call_kernel(tmp_path) == (EXPECTED_SUM, 1, [])   # rewritten: loaded, quietly


def test_the_cli_runs_with_a_damaged_cache(tmp_path, tiny_checkpoint, home, compiled_cache):
    copy_without(compiled_cache, tmp_path, kernels=())   # what a first run leaves
    env = dict(os.environ, HF_HOME=str(home), NUMBA_CACHE_DIR=str(tmp_path))
    command = [sys.executable, "-m", "gpt2numba", "run", "--model", str(tiny_checkpoint),
               "--prompt", "Hello", "--max-new-tokens", "3"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "compiling" not in first.stderr, first.stderr
    damage(tmp_path, ".nbi", 0)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert sum("damaged" in line for line in second.stderr.splitlines()) == 1
    assert "Traceback" not in second.stderr


def read_only(*folders):
    """A command prefix that runs the rest in a mount namespace where `folders` are read-only."""
    mounts = " && ".join(f"mount --bind {f} {f} && mount -o remount,bind,ro {f}" for f in folders)
    return ["unshare", "--mount", "--", "sh", "-c", f'{mounts} && exec "$@"', "sh"]


@pytest.fixture
def can_mount_read_only(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run([*read_only(probe), "touch", str(probe / "file")],
                            capture_output=True, text=True)
    if shutil.which("unshare") is None or "Read-only file system" not in result.stderr:
        pytest.skip(f"read-only bind mounts need root and unshare here: {result.stderr.strip()}")


def test_a_read_only_populated_cache_is_used_as_it_is(tmp_path, can_mount_read_only):
    cache = tmp_path / "baked-cache"
    cache.mkdir()
    call_kernel(cache)
    in_tree = set((KERNELS_SOURCE / "__pycache__").glob("*.nbi"))
    total, hits, stderr = call_kernel(cache, prefix=read_only(cache))
    assert (total, hits, stderr) == (EXPECTED_SUM, 1, [])
    # nothing written beside the source
    assert set((KERNELS_SOURCE / "__pycache__").glob("*.nbi")) == in_tree


def env_with_home(home):
    """os.environ for a user whose home is `home`: Numba's user-wide cache folder under it, and
    no NUMBA_CACHE_DIR (call_kernel sets the one a test passes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    return env


def test_no_writable_folder_compiles_in_memory_and_says_how_to_keep_a_cache(tmp_path,
                                                                           can_mount_read_only):
    home = tmp_path / "read-only-home"
    home.mkdir()
    env = env_with_home(home)
    total, hits, stderr = call_kernel(None, env=env, prefix=read_only(KERNELS_SOURCE, home))
    assert (total, hits) == (EXPECTED_SUM, 0)
    assert len(stderr) == 1 and "NUMBA_CACHE_DIR" in stderr[0], stderr


@pytest.mark.parametrize("home_writable", [True, False], ids=["home-cache", "no-other-folder"])
def test_a_cache_dir_that_cannot_be_created_is_named_with_the_folder_used_instead(
        tmp_path, can_mount_read_only, home_writable):
    """Numba replaces such a NUMBA_CACHE_DIR by the next folder it can write (the user-wide one
    under HOME), or by none, silently."""
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    home = tmp_path / "home"
    home.mkdir()
    read_only_folders = (KERNELS_SOURCE,) if home_writable else (KERNELS_SOURCE, home)
    total, hits, stderr = call_kernel(not_a_folder / "cache", env=env_with_home(home),
                                      prefix=read_only(*read_only_folders))
    assert (total, hits) == (EXPECTED_SUM, 0)
    assert len(stderr) == 1, stderr
    assert f"NUMBA_CACHE_DIR={not_a_folder / 'cache'}" in stderr[0], stderr
    instead = (str(home / ".cache" / "numba") if home_writable
               else "every run compiles the kernels")
    assert instead in stderr[0], stderr


def on_a_full_disk(folder, holding):
    """A command prefix that runs the rest in a mount namespace where `folder` is a small
    file system with no space left, holding a copy of the folder `holding` as folder/cache."""
    pages = sum(-(-path.stat().st_size // 4096) for path in Path(holding).rglob("*"))
    size = (pages + 16 + len(list(Path(holding).rglob("*")))) * 4096   # and a page per name
    fill = (f"mount -t tmpfs -o size={size} tmpfs {folder} && cp -r {holding} {folder}/cache"
            f" && (cat /dev/zero > {folder}/fill || true)")
    return ["unshare", "--mount", "--", "sh", "-c", f'{fill} 2>/dev/null && exec "$@"', "sh"]


def test_with_a_full_disk_the_cli_says_once_that_nothing_is_cached(tmp_path, tiny_checkpoint,
                                                                    home, can_mount_read_only,
                                                                    compiled_cache):
    """The compiling processes and this one each failed to save; the closing line said the
    kernels were cached for the next runs. The full disk holds the session's compiled cache
    less a few kernels (support/numba_cache.py), which are those that fail to be saved."""
    from support.cli import cli_env, run_cli
    from support.numba_cache import copy_without

    full = tmp_path / "full"
    full.mkdir()
    seed = copy_without(compiled_cache, tmp_path / "seed")
    code, stdout, stderr = run_cli(
        ["run", "--model", tiny_checkpoint, "--prompt", "Hello", "-n", "3"],
        cli_env(home, NUMBA_CACHE_DIR=full / "cache"),
        command=[*on_a_full_disk(full, seed), sys.executable, "-m", "gpt2numba"], timeout=600)
    assert code == 0, stderr
    assert "Traceback" not in stderr and stdout.startswith("Hello")
    lines = stderr.splitlines()
    cannot_write = [line for line in lines if "cannot write the JIT cache" in line]
    assert len(cannot_write) == 1 and "No space left on device" in cannot_write[0], stderr
    closing = [line for line in lines if line.startswith("gpt2numba: compiled the kernels in")]
    assert len(closing) == 1, stderr
    assert "cached for the next runs" not in closing[0], closing[0]
    assert "kept in memory only: the next run compiles again" in closing[0], closing[0]
