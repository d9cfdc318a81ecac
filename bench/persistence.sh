#!/usr/bin/env bash
# What persistence costs: QoS 1 floods to subscribers that keep their sessions (`midge bench ... --persistent`: p2p,
# 50 publishers each to its own subscriber; fan-in, 100 publishers to one subscriber), so every message is recorded
# for a stored session before its PUBACK. One run, side by side:
#   Midge without persistence | Midge, persistence_mode durable (the default) | Midge, persistence_mode snapshot
#   | Mosquitto with persistence true (its snapshot every autosave_interval, 1800 s).
# Broker pinned to core 0, generator to core 1, the store on the file system of $OUT. Prints messages per second and
# broker CPU per message, and the ratio of each to Midge without persistence.
#
#   bench/persistence.sh                      # the plain Release build of the broker
#   MIDGE=/path/to/native/midge bench/persistence.sh   # another build (bench/compare.sh publishes Native AOT)
#   DURATION=10 OUT=/tmp/p bench/persistence.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
CLIENTS="${CLIENTS:-50}"
OUT="${OUT:-$(mktemp -d /tmp/midge-persistence.XXXXXX)}"
mkdir -p "$OUT"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

echo "building Midge (Release)"
dotnet build src/Midge/Midge.csproj -c Release -nologo -v q >/dev/null
GENERATOR=(dotnet src/Midge/bin/Release/net10.0/midge.dll)
if [ -n "${MIDGE:-}" ]; then BROKER=("$MIDGE"); else BROKER=("${GENERATOR[@]}"); fi
if [ "$(nproc)" -ge 2 ]; then BROKER_PIN=(taskset -c 0); GEN_PIN=(taskset -c 1); else BROKER_PIN=(); GEN_PIN=(); fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

run() { # $1 = name, $2 = midge|mosquitto, rest = extra configuration lines; $SCENARIO = the bench arguments
  local name="$1" broker="$2"; shift 2
  local dir="$OUT/$name"
  rm -rf "$dir"; mkdir -p "$dir/store"
  {
    echo "listener $PORT 127.0.0.1"
    echo "allow_anonymous true"
    echo "log_type error"
    echo "user $(id -un)" # Mosquitto, as root, would switch to the mosquitto user
    for line in "$@"; do echo "${line//@STORE@/$dir/store/}"; done
  } >"$dir/broker.conf"
  if [ "$broker" = midge ]; then
    "${BROKER_PIN[@]}" "${BROKER[@]}" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
  else
    "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$dir/broker.conf" >"$dir/broker.log" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
  echo "  $name"
  timeout 120 "${GEN_PIN[@]}" "${GENERATOR[@]}" bench $SCENARIO -s 64 -q 1 --persistent --duration "$DURATION" \
    --warmup 1 -p "$PORT" --broker-pid "$pid" --json --quiet >"$dir/result.json" 2>"$dir/bench.err" || echo "    (exit $?: see $dir/bench.err)"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "running (results in $OUT)"
for SCENARIO in "p2p -c $CLIENTS" "fanin -c $((CLIENTS * 2))"; do
  s="${SCENARIO%% *}"
  run "$s-midge-off" midge
  run "$s-midge-durable" midge "persistence true" "persistence_location @STORE@"
  run "$s-midge-snapshot" midge "persistence true" "persistence_location @STORE@" "persistence_mode snapshot"
  run "$s-mosquitto" mosquitto "persistence true" "persistence_location @STORE@"
done

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
print(f"{'scenario':22} {'msg/s':>10} {'vs midge-off':>13} {'vs mosquitto':>13} {'CPU us/msg':>11}")
for scenario in ["p2p", "fanin"]:
  rows = []
  for name in [f"{scenario}-midge-off", f"{scenario}-midge-durable", f"{scenario}-midge-snapshot", f"{scenario}-mosquitto"]:
    try:
        r = json.load(open(os.path.join(out, name, "result.json")))
    except Exception as e:
        rows.append((name, None, None)); continue
    rate = r.get("received_per_s") or 0
    cpu = (r.get("broker") or {}).get("cpu_us_per_msg")
    rows.append((name, rate, cpu))
  base = rows[0][1] or 0
  mosq = rows[3][1] or 0
  for name, rate, cpu in rows:
    if rate is None:
        print(f"{name:22} {'failed':>10}"); continue
    ratio = f"{rate / base:.2f}x" if base else "-"
    vs = f"{rate / mosq:.2f}x" if mosq else "-"
    print(f"{name:22} {rate:10.0f} {ratio:>13} {vs:>13} {cpu if cpu is not None else '-':>11}")
PY
