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
# shellcheck source=../lib/venv.sh
. "$here/../lib/venv.sh"
# --no-deps: requirements.txt is the complete dependency set; see its header.
pinned_venv "the Open Badges validator" "$venv" "$here/requirements.txt" "import openbadges.verifier, openbadges_bakery"

if [ "${1:-}" = "--setup" ]; then
  echo "obv: validator ready in $venv"
  exit 0
fi

# Bounded: a hung loopback server must not hang the tests.
timeout 300 "$venv/bin/python" "$here/validate.py" "$@"
rc=$?
case "$rc" in
  0 | 1) exit "$rc" ;;
  124) venv_fail "the validator ran for more than 300 s" ;;
  *) exit 2 ;;
esac
