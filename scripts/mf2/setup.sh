#!/usr/bin/env bash
# Prepares .mf2-venv/ at the root of the repository: mf2py, pinned in requirements.txt, for
# the microformats tests (tests/api/portfolio.rs) and scripts/mf2/parse.py.
#
#   bash scripts/mf2/setup.sh     # prints the environment's python on its last line
#
# Exit: 0 ready, 2 the environment could not be built.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../.." && pwd)/.mf2-venv"
# shellcheck source=../lib/venv.sh
. "$here/../lib/venv.sh"
{ pinned_venv mf2py "$venv" "$here/requirements.txt" "import mf2py"; } >&2
echo "$venv/bin/python"
