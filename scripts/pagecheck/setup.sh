#!/usr/bin/env bash
# Prepares the page checks of the tests (tests/api/pagecheck.rs): the Nu HTML Checker
# (vnu.jar, run with Java) and axe-core, from the npm registry as pinned by package-lock.json,
# into scripts/pagecheck/node_modules/. Installs Debian's default-jre-headless when no Java is
# on the machine. Reinstalls when the lock file changes.
#
#   bash scripts/pagecheck/setup.sh    # prints the vnu.jar and axe.min.js paths, one a line
#
# Exit: 0 ready, 2 not ready.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

fail() {
  echo "HARNESS ERROR: $*" >&2
  exit 2
}

if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else fail "install Java (Debian: default-jre-headless)"; fi
  command -v apt-get >/dev/null 2>&1 || fail "install Java (Debian: default-jre-headless)"
  echo "pagecheck: installing default-jre-headless" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >&2 ||
    fail "apt-get could not install default-jre-headless"
fi
command -v npm >/dev/null 2>&1 || fail "install Node.js and npm (Debian: nodejs npm)"

exec 9>"$here/.lock" || fail "cannot open $here/.lock"
flock -w 600 9 || fail "timed out waiting for another process to set up $here"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$here/node_modules/.installed" 2>/dev/null)" != "$want" ]; then
  echo "pagecheck: npm ci in $here" >&2
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || fail "npm ci failed in $here"
  echo "$want" >"$here/node_modules/.installed"
fi
flock -u 9
for f in "$here/node_modules/vnu-jar/build/dist/vnu.jar" "$here/node_modules/axe-core/axe.min.js"; do
  [ -f "$f" ] || fail "$f is missing after npm ci"
  echo "$f"
done
