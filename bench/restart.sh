#!/usr/bin/env bash
# How long a restart takes with a large store, and what a retained message costs on disk:
#   1. a store with RETAINED retained messages alone: its size per message;
#   2. a store with RETAINED retained messages and SESSIONS persistent sessions holding QUEUED messages each
#      (64-byte payloads), written with the broker's own store code (`Midge.Benchmarks fill-store`);
#   3. the broker started on it: seconds until it accepts connections, and until the last session gets its queued
#      messages and the last retained message is served.
#
#   bench/restart.sh                                   # 1,000,000 retained, 100,000 sessions x 10 queued
#   RETAINED=100000 SESSIONS=10000 bench/restart.sh    # smaller
#   MIDGE=/path/to/native/midge bench/restart.sh       # another build of the broker (default: the Release build)
set -euo pipefail
cd "$(dirname "$0")/.."

RETAINED="${RETAINED:-1000000}"
SESSIONS="${SESSIONS:-100000}"
QUEUED="${QUEUED:-10}"
OUT="${OUT:-$(mktemp -d /tmp/midge-restart.XXXXXX)}"
mkdir -p "$OUT/retained" "$OUT/full"

echo "building (Release)"
dotnet build src/Midge/Midge.csproj -c Release -nologo -v q >/dev/null
dotnet build bench/Midge.Benchmarks -c Release -nologo -v q >/dev/null
FILL=(dotnet bench/Midge.Benchmarks/bin/Release/net10.0/Midge.Benchmarks.dll fill-store)
if [ -n "${MIDGE:-}" ]; then BROKER=("$MIDGE"); else BROKER=(dotnet src/Midge/bin/Release/net10.0/midge.dll); fi

"${FILL[@]}" "$OUT/retained/mosquitto.db" "$RETAINED" 0 0
bytes=$(stat -c %s "$OUT/retained/mosquitto.db")
echo "bytes on disk per retained message (64-byte payload, topic r/N): $((bytes / RETAINED))"
"${FILL[@]}" "$OUT/full/mosquitto.db" "$RETAINED" "$SESSIONS" "$QUEUED"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages %s\n' \
  "$PORT" "$OUT/full" "$QUEUED" >"$OUT/broker.conf"
start=$(date +%s.%N)
"${BROKER[@]}" -c "$OUT/broker.conf" >"$OUT/broker.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "broker exited:"; cat "$OUT/broker.log"; exit 1; }
  sleep 0.05
done
listening=$(date +%s.%N)
last=$((SESSIONS - 1))
got=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -c -i "s-$last" -q 1 -t "q/$last" -C "$QUEUED" -W 60 | wc -l)
retained=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "r/$((RETAINED - 1))" -C 1 -W 60 | wc -l)
served=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
python3 - "$start" "$listening" "$served" "$got" "$retained" "$rss" "$ticks" "$(getconf CLK_TCK)" <<'PY'
import sys
start, listening, served = map(float, sys.argv[1:4])
print(f"restart: listening after {listening - start:.1f} s; the last session's {sys.argv[4]} queued messages and "
      f"{sys.argv[5]} retained message served after {served - start:.1f} s; broker CPU {int(sys.argv[7]) / int(sys.argv[8]):.1f} s, "
      f"RSS {int(sys.argv[6]) // 1024} MiB")
PY
