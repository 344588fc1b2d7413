#!/usr/bin/env bash
# Installs the independent credential verifier of the tests (scripts/vc/verify.mjs) into
# scripts/vc/node_modules/, exactly as package-lock.json pins it; again only when the lock
# file changes.
#
#   bash scripts/vc/setup.sh
#
# Exit: 0 ready, 2 Node.js or npm is missing or the install failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here" || exit 2
stamp="node_modules/.cairn-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/vc/setup.sh: Node.js and npm are needed (Debian packages nodejs and npm)" >&2
  exit 2
fi
# No install scripts run: the verifier and its dependencies are plain JavaScript.
if ! npm ci --no-audit --no-fund --ignore-scripts >&2; then
  echo "scripts/vc/setup.sh: npm ci failed" >&2
  exit 2
fi
echo "$want" >"$stamp"
