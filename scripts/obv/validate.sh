#!/usr/bin/env bash
# The official Open Badges 2.0 validator, offline, against a loopback server.
#
#   bash scripts/obv/validate.sh --setup                         # prepare .obv-venv/ only
#   bash scripts/obv/validate.sh [--recipient EMAIL] URL|FILE    # last line VALID or INVALID: ...
#
# Exit: 0 valid, 1 invalid, 2 the validator or its environment is broken.
# The environment is .obv-venv/ at the root of the repository, built from requirements.txt
# with the first of python3.11 and python3; it is rebuilt when requirements.txt changes.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../.." && pwd)/.obv-venv"
req="$here/requirements.txt"

fail() {
  echo "HARNESS ERROR: $*"
  exit 2
}

setup() {
  local want py
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  py="$(command -v python3.11 || command -v python3)" ||
    fail "no python3 found: the Open Badges validator needs Python 3.11 with its venv module (Debian: python3 python3-venv)"
  echo "obv: installing the Open Badges validator into $venv with $("$py" --version 2>&1)" >&2
  rm -rf "$venv/bin" "$venv/lib" "$venv/include" "$venv/pyvenv.cfg"
  "$py" -m venv "$venv" >&2 ||
    fail "$py -m venv $venv failed (Debian: install python3-venv)"
  # --no-deps: the file is the complete dependency set; see its header.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req" >&2 ||
    fail "pip could not install $req into $venv (it needs PyPI once)"
  "$venv/bin/python" -c "import openbadges.verifier, openbadges_bakery" >&2 ||
    fail "the validator does not import in $venv"
  echo "$want" >"$venv/.requirements"
}

mkdir -p "$venv" || fail "cannot create $venv"
# Parallel tests may all find the environment missing; one builds it, the others wait.
exec 9>"$venv/.lock" || fail "cannot open $venv/.lock"
flock -w 600 9 || fail "timed out waiting for another process to set up $venv"
setup
flock -u 9

if [ "${1:-}" = "--setup" ]; then
  echo "obv: validator ready in $venv"
  exit 0
fi

# Bounded: a hung loopback server must not hang the tests.
timeout 300 "$venv/bin/python" "$here/validate.py" "$@"
rc=$?
case "$rc" in
  0 | 1) exit "$rc" ;;
  124) fail "the validator ran for more than 300 s" ;;
  *) exit 2 ;;
esac
