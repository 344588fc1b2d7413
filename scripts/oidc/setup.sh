#!/usr/bin/env bash
# Installs the OpenID Connect provider of the sign-in tests (scripts/oidc/provider.mjs) into
# scripts/oidc/node_modules/, exactly as package-lock.json pins it; again only when the lock
# file changes.
#
#   bash scripts/oidc/setup.sh
#
# Exit: 0 ready, 2 Node.js or npm is missing or the install failed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "${here:?}"
stamp="node_modules/.cairn-lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/oidc/setup.sh: Node.js and npm are needed (Debian packages nodejs and npm)" >&2
  exit 2
fi
# No install scripts run: the provider and its dependencies are plain JavaScript.
if ! npm ci --no-audit --no-fund --ignore-scripts >&2; then
  echo "scripts/oidc/setup.sh: npm ci failed" >&2
  exit 2
fi
echo "$want" >"$stamp"
