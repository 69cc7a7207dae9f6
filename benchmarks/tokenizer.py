"""Tokenizer speed: encode MB/s of gpt2numba and tiktoken on ~1 MB of English and of code.

Run from the project root:  python benchmarks/tokenizer.py [--mb 1.0] [--repeat 5]

Both texts come from files already on the machine (no downloads):
- English: the Python documentation in the stdlib's ``pydoc_data/topics.py``, then the
  docstrings of stdlib modules, paragraphs de-duplicated, up to ``--mb`` MB.
- Code: stdlib ``.py`` files, whole, in sorted path order, up to ``--mb`` MB.

One thread. Each figure is the median of ``--repeat`` runs. gpt2numba keeps a per-piece cache,
so two figures are given for it: "cold" (a freshly loaded tokenizer, empty cache: every distinct
piece goes through BPE once) and "warm" (the same text again, cache filled). tiktoken has no
cache. Also printed: the time to load the vocabulary (``Tokenizer.from_files``).
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))   # support: the vocabulary and the tiktoken oracle


def stdlib_dir() -> Path:
    """The directory of Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def english_text(n_bytes: int) -> str:
    """~n_bytes of real English prose: Python's reference docs, then stdlib docstrings.

    Paragraphs are de-duplicated, so the text is not a repetition that a cache would make
    trivially fast.
    """
    import pydoc_data.topics

    seen: set[str] = set()
    out: list[str] = []
    size = 0

    def add(text: str) -> bool:
        nonlocal size
        for para in text.split("\n\n"):
            key = para.strip()
            if not key or key in seen:
                continue
            seen.add(key)
            out.append(para)
            size += len(para.encode("utf-8")) + 2
            if size >= n_bytes:
                return True
        return False

    for topic in pydoc_data.topics.topics.values():
        if add(topic):
            return "\n\n".join(out)
    for path in sorted(stdlib_dir().rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and add(doc):
                    return "\n\n".join(out)
    return "\n\n".join(out)


def code_text(n_bytes: int) -> str:
    """~n_bytes of Python source: whole stdlib files in sorted path order (no tests)."""
    out: list[str] = []
    size = 0
    for path in sorted(stdlib_dir().glob("*.py")) + sorted(stdlib_dir().glob("*/*.py")):
        if "test" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(text)
        size += len(text.encode("utf-8"))
        if size >= n_bytes:
            break
    return "".join(out)


def timed(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn()."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> None:
    """Print encode throughput of gpt2numba and tiktoken, and the vocabulary load time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0, help="size of each text in MB")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args(argv)

    from gpt2numba.tokenizer import Tokenizer
    from support.paths import VOCAB_DIR
    from support.tokenizer_corpus import oracle  # tiktoken from the local vocab files

    vocab, merges = VOCAB_DIR / "vocab.json", VOCAB_DIR / "merges.txt"
    load = timed(lambda: Tokenizer.from_files(vocab, merges), args.repeat)
    enc = oracle()

    n = int(args.mb * 1_000_000)
    texts = {"english": english_text(n), "code": code_text(n)}
    print(f"vocabulary load (Tokenizer.from_files): {load * 1000:.0f} ms (median of {args.repeat})")
    print(f"{'text':8s} {'MB':>5s} {'gpt2numba cold':>15s} {'warm':>8s} {'tiktoken':>9s}"
          f" {'cold/tiktoken':>14s} {'same ids':>8s}")
    for name, text in texts.items():
        mb = len(text.encode("utf-8")) / 1e6
        fresh = []

        def cold():
            tok = Tokenizer.from_files(vocab, merges)
            t = time.perf_counter()
            tok.encode(text)
            fresh.append(time.perf_counter() - t)

        for _ in range(args.repeat):
            cold()
        t_cold = statistics.median(fresh)
        tok = Tokenizer.from_files(vocab, merges)
        ids = tok.encode(text)
        t_warm = timed(lambda: tok.encode(text), args.repeat)
        t_tik = timed(lambda: enc.encode_ordinary(text), args.repeat)
        same = ids == enc.encode_ordinary(text)
        print(f"{name:8s} {mb:5.2f} {mb / t_cold:11.2f} MB/s {mb / t_warm:8.2f} "
              f"{mb / t_tik:9.2f} {t_tik / t_cold:14.2f} {str(same):>8s}")


if __name__ == "__main__":
    main()
