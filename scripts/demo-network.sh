#!/usr/bin/env bash
# Three demo institutions on this machine: three `cairn serve --demo` on 127.0.0.1, each with
# its own data dir and port, trusting each other as peers of one chain. Prints their URLs and
# demo passwords, and stops all three on Ctrl-C (or SIGTERM).
#
#   DEMO_NETWORK_PORTS  three ports (default "8081 8082 8083")
#   DEMO_NETWORK_DIR    where the data dirs go (default ./demo-network; inst1, inst2, inst3)
#   CAIRN_BIN           the cairn binary (default: target/release/cairn, built when missing)
#
# One award makes a block (records_per_block = 1), so an award on one institution shows as a
# new block on all three within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a ports <<<"${DEMO_NETWORK_PORTS:-8081 8082 8083}"
if [ "${#ports[@]}" -ne 3 ]; then
  echo "demo-network.sh: DEMO_NETWORK_PORTS must name three ports" >&2
  exit 2
fi
root="${DEMO_NETWORK_DIR:-demo-network}"
bin="${CAIRN_BIN:-}"
if [ -z "$bin" ]; then
  bin=target/release/cairn
  [ -x "$bin" ] || cargo build --release --locked --quiet
fi

# The same chain for all three, a block per award; the harvest of each demo's own blogs runs.
export CAIRN_CHAIN_NETWORK=cairn-demo-network
export CAIRN_CHAIN_RECORDS_PER_BLOCK=1

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

urls=()
for i in 1 2 3; do
  port="${ports[$((i - 1))]}"
  dir="$root/inst$i"
  mkdir -p "$dir"
  url="http://127.0.0.1:$port"
  urls+=("$url")
  CAIRN_DATA_DIR="$dir" CAIRN_INSTITUTION_NAME="Demo Institution $i" \
    "$bin" serve --demo --bind "127.0.0.1:$port" >"$dir/serve.out" 2>"$dir/serve.log" &
  pids+=("$!")
done

# Each is up once its port answers (bounded: 60 s in all).
for i in 0 1 2; do
  port="${ports[$i]}"
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "demo-network.sh: institution $((i + 1)) stopped; see $root/inst$((i + 1))/serve.log" >&2
      exit 1
    fi
    sleep 0.1
  done
done

for i in 0 1 2; do
  for j in 0 1 2; do
    [ "$i" = "$j" ] && continue
    CAIRN_DATA_DIR="$root/inst$((i + 1))" "$bin" peer add --yes "${urls[$j]}" >/dev/null
  done
done

for i in 0 1 2; do
  password=$(sed -n 's/^Demo instructor: .*password: //p' "$root/inst$((i + 1))/serve.out")
  echo "Institution $((i + 1)): ${urls[$i]}/  (data in $root/inst$((i + 1)), demo@cairn.example.org / $password)"
done
echo "The three trust each other as peers; an award on one shows as a block on all three (${urls[0]}/chain). Ctrl-C stops them."

wait
