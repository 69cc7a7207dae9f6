#!/usr/bin/env bash
# Set up and run the whole test suite from a fresh clone: creates .venv (once), installs the
# package with its test extra, lints with ruff, installs chromium (Debian's, as root) when it is
# missing, then runs pytest in two processes (pytest-xdist: the suite is mostly compiles, child
# processes and servers, one core each; `-n 0` runs it in one). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/ruff check .
# tests/test_serve_page.py drives Debian's chromium (Playwright cannot download its browsers here)
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq </dev/null && apt-get install -y -qq chromium </dev/null >/dev/null
    else
        echo "scripts/test.sh: /usr/bin/chromium is missing and this is not root:" \
             "tests/test_serve_page.py will fail (sudo apt-get install chromium)" >&2
    fi
fi
export NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-2}"
# pytest's own script, not `python -m pytest`, which would put this folder on sys.path.
exec .venv/bin/pytest -n 2 "$@"
