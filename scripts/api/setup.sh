#!/usr/bin/env bash
# Prepares .api-venv/ at the root of the repository: openapi-spec-validator, Schemathesis and
# standardwebhooks, pinned in requirements.txt, for the API tests (tests/api/api.rs).
#
#   bash scripts/api/setup.sh     # prints the environment's python on its last line
#
# Built with the first of python3.11 and python3; rebuilt when requirements.txt changes.
# Exit: 0 ready, 2 the environment could not be built.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
venv="$(cd "$here/../.." && pwd)/.api-venv"
# shellcheck source=../lib/venv.sh
. "$here/../lib/venv.sh"
{ pinned_venv api "$venv" "$here/requirements.txt" "import openapi_spec_validator, schemathesis, standardwebhooks"; } >&2
echo "$venv/bin/python"
