#!/usr/bin/env bash
# Runs every test of the workspace. First installs what the tests need and the machine
# lacks: Debian's chromium and chromium-driver for the browser tests, Debian's prometheus
# package for promtool (the metrics test), and the official Open
# Badges validator in .obv-venv/ (pinned in scripts/obv/requirements.txt), Python's
# feedparser in .feedparser-venv/ (pinned in scripts/feedparser/requirements.txt), mf2py in
# .mf2-venv/ (pinned in scripts/mf2/requirements.txt), the API tools in .api-venv/ (pinned in
# scripts/api/requirements.txt), the credential verifier (scripts/vc/, npm), the OpenID provider
# (scripts/oidc/, npm) and the page checks'
# vnu.jar and axe-core (scripts/pagecheck/, npm, with Java). Then checks the
# format and lints (clippy, warnings denied) and runs the tests.
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

# promtool, from Debian's prometheus package, checks the metrics output and deploy/alerts.yml
# (tests/api/metrics.rs).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="missing"; fi
  if [ "$sudo" = missing ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: install prometheus (Debian package, for promtool) for the metrics test" >&2
  else
    echo "scripts/test.sh: installing prometheus for promtool" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi

# Built once here, before the tests run in parallel (they would otherwise queue on its lock).
if ! bash scripts/obv/validate.sh --setup >&2; then
  echo "scripts/test.sh: could not set up the Open Badges validator in .obv-venv/ (see above)" >&2
  exit 1
fi

# Python's feedparser, the reference of tests/api/feeds.rs, in .feedparser-venv/.
if ! bash scripts/feedparser/setup.sh >/dev/null; then
  echo "scripts/test.sh: could not set up feedparser in .feedparser-venv/ (see above)" >&2
  exit 1
fi

# mf2py, the microformats parser of tests/api/portfolio.rs, in .mf2-venv/.
if ! bash scripts/mf2/setup.sh >/dev/null; then
  echo "scripts/test.sh: could not set up mf2py in .mf2-venv/ (see above)" >&2
  exit 1
fi

# The independent Open Badges 3.0 verifier of tests/api/credentials.rs, pinned by
# scripts/vc/package-lock.json, in scripts/vc/node_modules/.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "scripts/test.sh: installing nodejs and npm for the credential verifier" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! bash scripts/vc/setup.sh; then
  echo "scripts/test.sh: could not set up the credential verifier in scripts/vc/node_modules/ (see above)" >&2
  exit 1
fi

# The OpenID Connect provider of tests/api/oidc.rs (oidc-provider), pinned by
# scripts/oidc/package-lock.json, in scripts/oidc/node_modules/.
if ! bash scripts/oidc/setup.sh; then
  echo "scripts/test.sh: could not set up the OpenID provider in scripts/oidc/node_modules/ (see above)" >&2
  exit 1
fi

# The page checks (tests/api/pagecheck.rs): the Nu HTML Checker and axe-core, pinned by
# scripts/pagecheck/package-lock.json, and Java to run the checker.
if ! bash scripts/pagecheck/setup.sh >/dev/null; then
  echo "scripts/test.sh: could not set up the page checks in scripts/pagecheck/ (see above)" >&2
  exit 1
fi

# openapi-spec-validator, Schemathesis and standardwebhooks, for tests/api/api.rs, in .api-venv/.
if ! bash scripts/api/setup.sh >/dev/null; then
  echo "scripts/test.sh: could not set up the API tools in .api-venv/ (see above)" >&2
  exit 1
fi

# The direction of the module dependencies first: an import cycle or a module that depends on
# a layer above its own fails here, naming the modules (see docs/architecture.md).
python3 scripts/deps/check.py

# Format and lints next: a style slip fails in seconds, not after the whole suite.
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
else
  echo "scripts/test.sh: rustfmt or clippy is not installed; skipping the format and lint checks" >&2
fi

cargo test --workspace --locked
