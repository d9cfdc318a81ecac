# Sourced by the cluster benchmarks (bench/cluster.sh, bench/cluster-backlog.sh), with OUT set: builds Midge (unless
# SKIP_BUILD), sets MIDGE, port (a free loopback port) and wait_port, stops what they start on exit (add each pid to
# pids), and starts Debian's nats-server with JetStream on NATS_PORT, its store and log under OUT.
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building Midge (Release)"
  dotnet build src/Midge/Midge.csproj -c Release -nologo -v q >/dev/null
fi
MIDGE=(dotnet src/Midge/bin/Release/net10.0/midge.dll)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

NATS="$(command -v nats-server || echo /usr/sbin/nats-server)"
NATS_PORT="$(port)"
"$NATS" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$OUT/jetstream" >"$OUT/nats.log" 2>&1 &
pids+=($!)
wait_port "$NATS_PORT"
