#!/usr/bin/env bash
# Runs the benchmarks (release build). Sets up Python's feedparser, pinned in
# scripts/feedparser/requirements.txt, in .feedparser-venv for the harvest baseline. Usage: bash scripts/bench.sh [harvest|badges|notify|peers|hostile|latency|api ...]
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(bash scripts/feedparser/setup.sh | tail -n 1)"
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || echo "scripts/bench.sh: could not install wrk" >&2
fi
export CAIRN_BENCH_PYTHON="$python"
if [ $# -eq 0 ]; then
  cargo bench --locked --workspace
else
  for b in "$@"; do cargo bench --locked --workspace --bench "$b"; done
fi
