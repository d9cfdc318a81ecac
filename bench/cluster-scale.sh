#!/usr/bin/env bash
# Does a cluster scale out (docs/cluster.md)? The same load, CLIENTS publisher/subscriber pairs of QoS 1 64-byte
# messages flat out for DURATION seconds (`midge bench p2p`), against a broker alone, then spread over NODES nodes of
# one cluster: one generator per node with CLIENTS/NODES pairs each, both ends on that node ("local": what a load
# balancer that keeps a device and its backend together gives), then each generator's subscribers on the next node
# ("cross": every message crosses NATS once). Prints messages per second in all and the ratio to the broker alone.
# Meant for a many-core machine: on two cores the nodes, nats-server and the generators share them, and a cluster
# cannot beat one broker there. Pin each node to its own cores with TASKSET=1 (needs util-linux's taskset).
#
#   bench/cluster-scale.sh
#   NODES=3 CLIENTS=300 DURATION=20 TASKSET=1 bench/cluster-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NODES="${NODES:-3}"
CLIENTS="${CLIENTS:-30}"
DURATION="${DURATION:-5}"
OUT="${OUT:-$(mktemp -d /tmp/midge-scale.XXXXXX)}"
. bench/cluster-common.sh

cores="$(nproc)"
per=$(( cores / (NODES + 1) > 0 ? cores / (NODES + 1) : 1 ))
pin() { # $1 = slot: runs the rest on that slot's cores when TASKSET=1
  local slot="$1"; shift
  if [ -n "${TASKSET:-}" ]; then taskset -c "$(( slot * per ))-$(( slot * per + per - 1 ))" "$@"; else "$@"; fi
}

start_node() { # $1 = name, $2 = port, $3 = slot, $4 = cluster|alone
  {
    echo "listener $2 127.0.0.1"
    echo "allow_anonymous true"
    echo "log_type error"
    if [ "$4" = cluster ]; then
      echo "cluster_nats_url nats://127.0.0.1:$NATS_PORT"
      echo "cluster_name scale"
      echo "cluster_node_name $1"
    fi
  } >"$OUT/$1.conf"
  pin "$3" "${MIDGE[@]}" -c "$OUT/$1.conf" >"$OUT/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

ALONE="$(port)"
start_node alone "$ALONE" 0 alone
ports=()
for i in $(seq 1 "$NODES"); do
  p="$(port)"; ports+=("$p")
  start_node "n$i" "$p" "$(( i - 1 ))" cluster
done
sleep 3 # the nodes learn each other's subscriptions

gen() { # $1 = result file, $2 = clients, rest = bench arguments
  local out="$1" clients="$2"; shift 2
  pin "$NODES" timeout 180 "${MIDGE[@]}" bench p2p -c "$clients" -s 64 -q 1 --duration "$DURATION" --warmup 1 --json --quiet "$@" >"$out" 2>"$out.err" \
    || echo "    (exit $?: see $out.err)"
}
echo "running (results in $OUT)"
echo "  alone"
gen "$OUT/alone.json" "$CLIENTS" -p "$ALONE"
kill -TERM "${pids[1]}" 2>/dev/null || true # the broker alone leaves the cores to the nodes
for mode in local cross; do
  echo "  $mode"
  run=()
  for i in $(seq 0 $(( NODES - 1 ))); do
    sub="${ports[$i]}"
    [ "$mode" = cross ] && sub="${ports[$(( (i + 1) % NODES ))]}"
    # Topics of its own per generator: client indexes repeat across generators.
    gen "$OUT/$mode-$i.json" $(( CLIENTS / NODES )) -p "${ports[$i]}" --sub-port "$sub" -t "bench/g$i/%i" --sub-topic "bench/g$i/%i" &
    run+=($!)
  done
  wait "${run[@]}"
done

python3 - "$OUT" "$NODES" <<'PY'
import json, os, sys
out, nodes = sys.argv[1], int(sys.argv[2])
def rate(name):
    try: return json.load(open(os.path.join(out, name + ".json"))).get("received_per_s") or 0
    except Exception: return 0
alone = rate("alone")
print(f"{'run':24} {'msg/s':>10} {'vs alone':>9}")
print(f"{'broker alone':24} {alone:10.0f} {1:8.2f}x")
for mode in ("local", "cross"):
    total = sum(rate(f"{mode}-{i}") for i in range(nodes))
    print(f"{f'{nodes} nodes, {mode}':24} {total:10.0f} {total / alone if alone else 0:8.2f}x")
PY
