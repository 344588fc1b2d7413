#!/usr/bin/env bash
# Runs every test of the workspace. First installs what the tests need and the machine
# lacks: Debian's chromium and chromium-driver for the browser tests, and the Python
# environment of the Open Badges validator in ../shared/obv.
set -euo pipefail
cd "$(dirname "$0")/.."

need_browser=0
command -v chromium >/dev/null 2>&1 || need_browser=1
command -v chromedriver >/dev/null 2>&1 || need_browser=1
if [ "$need_browser" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="missing"; fi
  if [ "$sudo" = missing ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: install chromium and chromium-driver (Debian packages) for the browser test" >&2
  else
    echo "scripts/test.sh: installing chromium and chromium-driver for the browser test" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  fi
fi

# The official Open Badges validator (../shared/obv) builds its Python environment once;
# do it here so that parallel tests do not race to create it.
obv="${CAIRN_OBV:-../shared/obv/validate.sh}"
if [ -f "$obv" ]; then
  bash "$obv" --setup >/dev/null
else
  echo "scripts/test.sh: $obv not found; the Open Badges conformance tests will fail" >&2
fi

cargo test --workspace --locked
