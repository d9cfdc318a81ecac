#!/usr/bin/env bash
# What the cluster on NATS costs (docs/cluster.md): messages per second and latency with publishers and subscribers on
# one node (a broker alone, no cluster) against publishers on node A and subscribers on node B of a two-node cluster
# (every message crosses NATS once). `midge bench p2p`: CLIENTS pairs, each publisher to its own subscriber, QoS 1,
# 64-byte payloads, for DURATION seconds after a 1 s warm-up (which also lets node B's subscriptions reach NATS):
# once flat out (throughput; latency then is queueing), once at RATE messages per second in all (latency).
# Debian's nats-server with JetStream on loopback. On two cores the nodes, NATS and the generator share them: read
# the ratio, not the absolute numbers. Two more nodes, C and D, form a second cluster with persistence_mode snapshot:
# there a QoS 1/2 PUBACK does not wait for the subscriber's node to confirm it kept the message (docs/cluster.md,
# "What is acknowledged when"), so two-nodes against two-nodes-snapshot is what that confirmation costs. The
# persistent-* runs repeat the flat-out ones with persistent sessions (--persistent): every session change is then
# replicated to the sessions bucket, and with durable acknowledgements each PUBACK waits for it.
#
#   bench/cluster.sh
#   DURATION=10 CLIENTS=20 QOS=0 OUT=/tmp/c bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
CLIENTS="${CLIENTS:-10}"
QOS="${QOS:-1}"
OUT="${OUT:-$(mktemp -d /tmp/midge-cluster.XXXXXX)}"
mkdir -p "$OUT"
RATE="${RATE:-5000}"
. bench/cluster-common.sh

node() { # $1 = name, $2 = port, $3 = cluster|snapshot|alone
  {
    echo "listener $2 127.0.0.1"
    echo "allow_anonymous true"
    echo "log_type error"
    if [ "$3" != alone ]; then
      echo "cluster_nats_url nats://127.0.0.1:$NATS_PORT"
      echo "cluster_name bench-$3"
      echo "cluster_node_name $1"
    fi
    if [ "$3" = snapshot ]; then echo "persistence_mode snapshot"; fi
  } >"$OUT/$1.conf"
  "${MIDGE[@]}" -c "$OUT/$1.conf" >"$OUT/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

ALONE="$(port)"; A="$(port)"; B="$(port)"
node alone "$ALONE" alone
node a "$A" cluster
node b "$B" cluster
C="$(port)"; D="$(port)"
node c "$C" snapshot
node d "$D" snapshot
sleep 3 # the nodes learn each other's subscriptions (2 s)

bench() { # $1 = name, rest = bench arguments
  local name="$1"; shift
  echo "  $name"
  timeout 120 "${MIDGE[@]}" bench p2p -c "$CLIENTS" -s 64 -q "$QOS" --duration "$DURATION" --warmup 1 --json --quiet "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.err" || echo "    (exit $?: see $OUT/$name.err)"
}
echo "running (results in $OUT)"
bench one-node -p "$ALONE"
bench same-node-of-cluster -p "$A"
bench two-nodes -p "$A" --sub-port "$B"
bench two-nodes-snapshot -p "$C" --sub-port "$D"
bench persistent-one-node -p "$ALONE" --persistent
bench persistent-same-node-of-cluster -p "$A" --persistent
bench persistent-two-nodes -p "$A" --sub-port "$B" --persistent
bench persistent-two-nodes-snapshot -p "$C" --sub-port "$D" --persistent
bench one-node-at-rate -p "$ALONE" --rate "$RATE"
bench same-node-of-cluster-at-rate -p "$A" --rate "$RATE"
bench two-nodes-at-rate -p "$A" --sub-port "$B" --rate "$RATE"
bench two-nodes-snapshot-at-rate -p "$C" --sub-port "$D" --rate "$RATE"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
print(f"{'run':34} {'msg/s':>10} {'vs one node':>12} {'p50 us':>9} {'p99 us':>9}")
base = None
for name in ["one-node", "same-node-of-cluster", "two-nodes", "two-nodes-snapshot", "persistent-one-node", "persistent-same-node-of-cluster",
             "persistent-two-nodes", "persistent-two-nodes-snapshot", "one-node-at-rate", "same-node-of-cluster-at-rate",
             "two-nodes-at-rate", "two-nodes-snapshot-at-rate"]:
    if name in ("persistent-one-node", "one-node-at-rate"): base = None
    try:
        r = json.load(open(os.path.join(out, name + ".json")))
    except Exception:
        print(f"{name:34} {'failed':>10}"); continue
    rate = r.get("received_per_s") or 0
    lat = r.get("latency_us") or {}
    base = base or rate
    print(f"{name:34} {rate:10.0f} {rate / base if base else 0:11.2f}x {lat.get('p50', '-'):>9} {lat.get('p99', '-'):>9}")
PY
