#!/usr/bin/env bash
# Prepares .feedparser-venv/ at the root of the repository: Python's feedparser, pinned in
# requirements.txt, for the conformance test (tests/api/feeds.rs) and scripts/feedparser/read.py.
#
#   bash scripts/feedparser/setup.sh     # prints the environment's python on its last line
#
# Built with the first of python3.11 and python3; rebuilt when requirements.txt changes.
# Exit: 0 ready, 2 the environment could not be built.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../.." && pwd)/.feedparser-venv"
req="$here/requirements.txt"

fail() {
  echo "HARNESS ERROR: $*" >&2
  exit 2
}

setup() {
  local want py
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  py="$(command -v python3.11 || command -v python3)" ||
    fail "no python3 found: feedparser needs Python 3 with its venv module (Debian: python3 python3-venv)"
  echo "feedparser: installing into $venv with $("$py" --version 2>&1)" >&2
  rm -rf "$venv/bin" "$venv/lib" "$venv/include" "$venv/pyvenv.cfg"
  "$py" -m venv "$venv" >&2 ||
    fail "$py -m venv $venv failed (Debian: install python3-venv)"
  # --no-deps: the file is the complete dependency set.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req" >&2 ||
    fail "pip could not install $req into $venv (it needs PyPI once)"
  "$venv/bin/python" -c "import feedparser" >&2 || fail "feedparser does not import in $venv"
  echo "$want" >"$venv/.requirements"
}

mkdir -p "$venv" || fail "cannot create $venv"
# Parallel tests may all find the environment missing; one builds it, the others wait.
exec 9>"$venv/.lock" || fail "cannot open $venv/.lock"
flock -w 600 9 || fail "timed out waiting for another process to set up $venv"
setup
flock -u 9
echo "$venv/bin/python"
