#!/usr/bin/env bash
# What replicating a persistent session costs as its backlog grows (docs/cluster.md, "Persistent sessions survive a
# node's death"): a persistent subscriber goes offline, then one publisher sends COUNT QoS 1 messages of SIZE bytes,
# each waiting for its PUBACK, which (persistence_mode durable, the default) waits until the session's change is in the
# cluster's sessions bucket. Against a broker alone (nothing replicated) and a node of a one-node cluster, side by side.
# Prints messages per second for each tenth of the stream, so a cost that grows with the backlog shows, and how many
# of the messages the bucket holds at the end (a replica that could not write the session has fewer).
# Debian's nats-server with JetStream and python3-paho-mqtt; on a shared 2-core machine read the ratios.
#
#   bench/cluster-backlog.sh
#   COUNT=4000 SIZE=512 bench/cluster-backlog.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-2000}"
SIZE="${SIZE:-1024}"
OUT="${OUT:-$(mktemp -d /tmp/midge-backlog.XXXXXX)}"
PYTHON=/usr/bin/python3 # Debian's, with paho
. bench/cluster-common.sh

ALONE="$(port)"; NODE="$(port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages %s\n' "$ALONE" "$COUNT" >"$OUT/alone.conf"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages %s\ncluster_nats_url nats://127.0.0.1:%s\ncluster_name backlog\ncluster_node_name n1\n' \
  "$NODE" "$COUNT" "$NATS_PORT" >"$OUT/node.conf"
for n in alone node; do
  "${MIDGE[@]}" -c "$OUT/$n.conf" >"$OUT/$n.log" 2>&1 &
  pids+=($!)
done
wait_port "$ALONE"; wait_port "$NODE"
sleep 2

run() { # $1 = name, $2 = port
  "$PYTHON" - "$1" "$2" "$COUNT" "$SIZE" <<'PY'
import sys, time
import paho.mqtt.client as mqtt
name, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sub = mqtt.Client(client_id="backlog-" + name, clean_session=False)
sub.connect("127.0.0.1", port)
sub.loop_start()
sub.subscribe("backlog/#", qos=1)[1]
time.sleep(0.5)
sub.disconnect(); sub.loop_stop()
pub = mqtt.Client(client_id="pub-" + name)
pub.connect("127.0.0.1", port)
pub.loop_start()
payload = b"x" * size
tenth, rates, start = max(1, count // 10), [], time.perf_counter()
mark = start
for i in range(count):
    pub.publish("backlog/x", payload, qos=1).wait_for_publish()
    if (i + 1) % tenth == 0:
        now = time.perf_counter(); rates.append(tenth / (now - mark)); mark = now
total = count / (time.perf_counter() - start)
pub.disconnect(); pub.loop_stop()
print(f"{name:8} {total:9.0f} msg/s overall; per tenth: " + " ".join(f"{r:.0f}" for r in rates))
PY
}
echo "COUNT=$COUNT SIZE=$SIZE (results in $OUT)"
run alone "$ALONE"
run node "$NODE"
grep -h "cannot replicate" "$OUT/node.log" | head -3 || true
