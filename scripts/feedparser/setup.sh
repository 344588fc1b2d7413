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
# shellcheck source=../lib/venv.sh
. "$here/../lib/venv.sh"
{ pinned_venv feedparser "$venv" "$here/requirements.txt" "import feedparser"; } >&2
echo "$venv/bin/python"
