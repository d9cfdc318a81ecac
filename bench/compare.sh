#!/usr/bin/env bash
# Runs the same `midge bench` scenarios against Midge and Debian's mosquitto, in turn, on the same free port with
# the same generated mosquitto.conf; each broker is pinned to core 0 and the generator to core 1 (taskset), and
# the broker's CPU time and memory are read from /proc over the measured window (--broker-pid).
# Prints a table of Midge/Mosquitto ratios. Everything stops by itself; a run takes a few minutes.
#
#   bench/compare.sh                  # all scenarios
#   DURATION=10 bench/compare.sh      # longer measured windows (seconds, default 5)
#   MEM_CONNS=20000 bench/compare.sh  # idle connections for the memory scenario (default 50000, capped by ulimit -n)
#   OUT=/tmp/cmp bench/compare.sh     # keep the JSON of every run there (default: a temporary directory)
#   LAT_ROUNDS=9 CONN_ROUNDS=5 bench/compare.sh  # more alternating rounds for the median rows (default 7 and 3)
#   MIDGE_BUILD=r2r bench/compare.sh  # the broker published with ReadyToRun (default: aot; or jit: the Release build output)
#   MIDGE_BIN=/tmp/cmp/midge-bin/midge bench/compare.sh  # the executable an earlier run published (no publish)
#   TRANSPORT=websockets SCENARIOS="fanout p2p-q1 memory" MEM_CONNS=10000 bench/compare.sh
#                                     # MQTT over WebSocket: a `protocol websockets` listener on both, `midge bench --ws`
#   SCRAPE=1 SCENARIOS="fanin fanout p2p-q1" bench/compare.sh
#                                     # Midge a second time with its HTTP listener, /metrics scraped every second
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
MEM_CONNS="${MEM_CONNS:-50000}"
CONN_CONNS="${CONN_CONNS:-10000}"
LAT_RATE="${LAT_RATE:-5000}"
LAT_ROUNDS="${LAT_ROUNDS:-7}" # latency alternates Midge and Mosquitto this many times; the table shows medians
CONN_ROUNDS="${CONN_ROUNDS:-3}" # so does the connect scenario (its CPU per connect is a few tenths of a second in all)
SCENARIOS="${SCENARIOS:-fanin fanout p2p-q1 latency connect memory}" # a subset runs just those rows
OUT="${OUT:-$(mktemp -d /tmp/midge-compare.XXXXXX)}"
TRANSPORT="${TRANSPORT:-tcp}" # or websockets
SCRAPE="${SCRAPE:-0}" # 1: a third run per scenario, Midge with `protocol http` and /metrics scraped every second
case "$TRANSPORT" in tcp) WS=() ;; websockets) WS=(--ws) ;; *) echo "TRANSPORT must be tcp or websockets" >&2; exit 2 ;; esac
BROKERS="midge mosquitto"; if [ "$SCRAPE" = 1 ]; then BROKERS="midge midge-scraped mosquitto"; fi
mkdir -p "$OUT"

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "installing mosquitto"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
fi
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

# The generator is always the Release build (`midge bench`, the same instrument for both brokers). The broker is
# published as one deploys it (MIDGE_BUILD): aot = Native AOT (default; needs clang, installed when missing; nothing
# is compiled at run time), r2r = ReadyToRun (hot code is still recompiled with profile data while the first
# scenarios run), jit = the Release build output itself. docs/benchmarks.md says why the default is aot.
echo "building Midge (Release)"
dotnet build src/Midge/Midge.csproj -c Release -nologo -v q >/dev/null
GENERATOR=(dotnet src/Midge/bin/Release/net10.0/midge.dll)
case "$(uname -m)" in x86_64) RID=linux-x64 ;; aarch64) RID=linux-arm64 ;; *) RID="" ;; esac
MIDGE_BUILD="${MIDGE_BUILD:-aot}"
if [ -z "$RID" ]; then MIDGE_BUILD=jit; fi
if [ -n "${MIDGE_BIN:-}" ]; then MIDGE_BUILD=given; fi # an executable published by an earlier run (its OUT/midge-bin/midge)
case "$MIDGE_BUILD" in
  given)
    echo "broker: $MIDGE_BIN (MIDGE_BIN, not published again)"
    MIDGE=("$MIDGE_BIN") ;;
  aot)
    echo "publishing Midge (Release, Native AOT, $RID)"
    if ! command -v clang >/dev/null 2>&1; then
      echo "installing clang and zlib1g-dev (Native AOT links with them)"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang zlib1g-dev >/dev/null
    fi
    dotnet publish src/Midge/Midge.csproj -c Release -r "$RID" -p:PublishAot=true -o "$OUT/midge-bin" -nologo -v q >/dev/null
    MIDGE=("$OUT/midge-bin/midge") ;;
  r2r)
    echo "publishing Midge (Release, ReadyToRun, $RID)"
    dotnet publish src/Midge/Midge.csproj -c Release -r "$RID" --self-contained false -o "$OUT/midge-bin" -nologo -v q >/dev/null
    MIDGE=(dotnet "$OUT/midge-bin/midge.dll") ;;
  jit)
    MIDGE=("${GENERATOR[@]}") ;;
  *) echo "MIDGE_BUILD must be aot, r2r or jit" >&2; exit 2 ;;
esac

# Every connection is a file descriptor on both sides: raise the soft limit as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT="$(ulimit -n)"
if [ "$FD_LIMIT" != unlimited ] && [ "$MEM_CONNS" -gt $((FD_LIMIT - 500)) ]; then
  echo "note: ulimit -n is $FD_LIMIT (hard limit); the memory scenario uses $((FD_LIMIT - 500)) connections instead of $MEM_CONNS"
  MEM_CONNS=$((FD_LIMIT - 500))
fi

CORES="$(nproc)"
if [ "$CORES" -ge 2 ]; then
  BROKER_PIN=(taskset -c 0); GEN_PIN=(taskset -c 1)
  echo "pinning: broker on core 0, generator on core 1 ($CORES cores)"
else
  BROKER_PIN=(); GEN_PIN=()
  echo "note: only $CORES core available: no taskset, broker and generator share it"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
MQTT_PORT="$(free_port)" # websockets: the plain listener beside it
HTTP_PORT="$(free_port)" # SCRAPE=1: Midge's HTTP listener
echo "bench:bench-secret" > "$OUT/api_keys"

write_conf() { # $1 = file, $2 = extra line or "", $3 = broker (midge-scraped adds the HTTP listener)
  {
    if [ "$TRANSPORT" = websockets ]; then
      # Mosquitto 2.0.11 refuses to start with websockets listeners only ("Unable to start any listening sockets"),
      # and its libwebsockets reads a listener's address as an interface name: both brokers get a plain listener
      # on loopback beside the WebSocket one, which listens on every IPv4 address.
      echo "listener $MQTT_PORT 127.0.0.1"
      echo "listener $PORT"
      echo "protocol websockets"
      echo "socket_domain ipv4"
    else
      echo "listener $PORT 127.0.0.1"
    fi
    echo "allow_anonymous true"
    echo "max_queued_messages 1000"
    echo "max_connections -1"
    echo "log_type error"
    echo "log_type warning"
    if [ -n "$2" ]; then echo "$2"; fi
    if [ "$3" = midge-scraped ]; then
      echo "listener $HTTP_PORT 127.0.0.1"
      echo "protocol http"
      echo "api_key_file $OUT/api_keys"
    fi
  } > "$1"
}

BROKER_PID=""
start_broker() { # $1 = midge|midge-scraped|mosquitto, $2 = conf
  if [ "$1" != mosquitto ]; then
    "${BROKER_PIN[@]}" "${MIDGE[@]}" -c "$2" >"$OUT/$1.log" 2>&1 &
  else
    "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$2" >"$OUT/$1.log" 2>&1 &
  fi
  BROKER_PID=$!
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "error: $1 did not listen on $PORT" >&2; cat "$OUT/$1.log" >&2; return 1
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}
trap stop_broker EXIT

run_scenario() { # $1 = name, $2 = extra conf line, rest = bench arguments
  local name="$1" extra="$2"; shift 2
  local base="$name"; case "$name" in latency[0-9]*) base=latency ;; connect[0-9]*) base=connect ;; esac
  case " $SCENARIOS " in *" $base "*) ;; *) return 0 ;; esac
  for broker in $BROKERS; do
    write_conf "$OUT/$name.$broker.conf" "$extra" "$broker"
    start_broker "$broker" "$OUT/$name.$broker.conf"
    sleep 0.5
    echo "  $name on $broker: midge bench $* ${WS[*]}"
    local scraper=""
    if [ "$broker" = midge-scraped ]; then
      # Prometheus's way: one GET /metrics a second, from the generator's core; each scrape's time is kept.
      "${GEN_PIN[@]}" bash -c 'while sleep 1; do curl -s -o /dev/null -w "%{http_code} %{time_total} %{size_download}\n" \
        -u bench:bench-secret "http://127.0.0.1:$1/metrics"; done' _ "$HTTP_PORT" >"$OUT/$name.scrapes" 2>/dev/null &
      scraper=$!
    fi
    timeout 180 "${GEN_PIN[@]}" "${GENERATOR[@]}" bench "$@" "${WS[@]}" -p "$PORT" --broker-pid "$BROKER_PID" --json --quiet \
      >"$OUT/$name.$broker.json" 2>"$OUT/$name.$broker.err" || echo "    (exit $?: see $OUT/$name.$broker.err)"
    if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
    stop_broker
  done
}

T=(--duration "$DURATION" --warmup "$WARMUP")
IFADDRS="127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
echo "running scenarios (JSON in $OUT); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The kernel's DAMON reclaim thread, where it runs, takes a core for milliseconds at a time (docs/benchmarks.md).
if pgrep -x 'kdamond\..*' >/dev/null 2>&1; then
  echo "note: kdamond (DAMON) is running here; it preempts whichever broker shares its core, so latency tails (p99.9, max) show it"
fi
run_scenario fanin "" fanin -c 100 -s 64 -q 0 "${T[@]}"
run_scenario fanout "" fanout -c 100 -s 64 -q 0 "${T[@]}"
run_scenario p2p-q1 "" p2p -c 50 -s 64 -q 1 "${T[@]}"
# Latency at a fixed offered rate; both brokers send without Nagle's delay here. A message's latency ends at its
# arrival on the subscriber's socket (the kernel's timestamp), so the generator's own queueing is left out.
for round in $(seq 1 "$LAT_ROUNDS"); do
  case " $SCENARIOS " in *" latency "*) run_scenario "latency$round" "set_tcp_nodelay true" p2p -c 50 -s 64 -q 0 --rate "$LAT_RATE" --rx-time kernel "${T[@]}" ;; esac
done
for round in $(seq 1 "$CONN_ROUNDS"); do
  run_scenario "connect$round" "" conn -c "$CONN_CONNS" --concurrency 100 --ifaddr "$IFADDRS" --duration 0 --settle 0
done
run_scenario memory "" conn -c "$MEM_CONNS" --concurrency 100 --ifaddr "$IFADDRS" --duration 0 --settle 2

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these cores makes the figures noisy)"
python3 - "$OUT" "$CORES" "$LAT_ROUNDS" "$CONN_ROUNDS" "$TRANSPORT" <<'PY'
import json, sys, os, statistics
out, cores, rounds, conn_rounds, transport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ws = " over WebSocket" if transport == "websockets" else ""
def load(name, broker):
    try:
        with open(os.path.join(out, f"{name}.{broker}.json")) as f: return json.load(f)
    except Exception: return None
def ratio(a, b):
    return f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "n/a"
def num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else "n/a"
rows, per_core, scraped = [], [], []
for name, title in [("fanin", "fan-in QoS 0 (100 pub -> 1 sub, 64 B)"),
                    ("fanout", "fan-out QoS 0 (1 pub -> 100 sub, 64 B)"),
                    ("p2p-q1", "point-to-point QoS 1 (50 pairs, 64 B)")]:
    q = load(name, "mosquitto")
    qr = q and q["received_per_s"]; qc = q and q.get("broker", {}).get("cpu_us_per_msg")
    for broker, suffix in [("midge", ""), ("midge-scraped", ", Midge's /metrics scraped every 1 s")]:
        m = load(name, broker)
        if broker == "midge-scraped" and not m: continue
        mr = m and m["received_per_s"]; mc = m and m.get("broker", {}).get("cpu_us_per_msg")
        err = f" (errors: midge {m and m['errors']}, mosquitto {q and q['errors']})" if (m and m["errors"]) or (q and q["errors"]) else ""
        rows.append((title[:-1] + ws + suffix + ")" + err, num(mr, ",.0f") + " msg/s", num(qr, ",.0f") + " msg/s", ratio(mr, qr),
                     num(mc, ".2f"), num(qc, ".2f"), ratio(mc, qc)))
        # Each broker is pinned to one core: messages per CPU second is the throughput one core gives.
        if isinstance(mc, (int, float)) and isinstance(qc, (int, float)) and mc and qc:
            per_core.append(f"{name}{suffix}: Midge {1e6 / mc:,.0f}, Mosquitto {1e6 / qc:,.0f} msg per CPU second, ratio {qc / mc:.2f}")
    base, s = load(name, "midge"), load(name, "midge-scraped")
    if base and s:
        times = []
        try:
            with open(os.path.join(out, f"{name}.scrapes")) as f:
                times = [float(l.split()[1]) * 1000 for l in f if l.startswith("200 ")]
        except Exception: pass
        scraped.append(f"{name}: throughput {ratio(s['received_per_s'], base['received_per_s'])}, CPU per message "
                       f"{ratio(s.get('broker', {}).get('cpu_us_per_msg'), base.get('broker', {}).get('cpu_us_per_msg'))}; "
                       f"{len(times)} scrapes answered 200, median {num(statistics.median(times) if times else None, '.1f')} ms")
def median(runs, get):
    values = [v for v in (get(r) for r in runs if r) if isinstance(v, (int, float))]
    return statistics.median(values) if values else None
def rounds_of(name, count):  # each broker's runs of an alternating scenario, and Midge's first that ran
    ms = [load(f"{name}{i}", "midge") for i in range(1, count + 1)]
    qs = [load(f"{name}{i}", "mosquitto") for i in range(1, count + 1)]
    return ms, qs, next((r for r in ms if r), None)
ms, qs, m = rounds_of("latency", rounds)
for p in ["p50", "p90", "p99", "p99_9", "max"]:
    ml = median(ms, lambda r: r["latency_us"].get(p)); ql = median(qs, lambda r: r["latency_us"].get(p))
    mc = median(ms, lambda r: r.get("broker", {}).get("cpu_us_per_msg"))
    qc = median(qs, lambda r: r.get("broker", {}).get("cpu_us_per_msg"))
    rows.append((f"latency {p.replace('_', '.')} at {num(m and m['offered_rate'], '.0f')} msg/s (50 pairs, QoS 0, median of {rounds})",
                 num(ml, ",.0f") + " us", num(ql, ",.0f") + " us", ratio(ml, ql),
                 num(mc, ".2f") if p == "p50" else "", num(qc, ".2f") if p == "p50" else "", ratio(mc, qc) if p == "p50" else ""))
ms, qs, m = rounds_of("connect", conn_rounds)
mr = median(ms, lambda r: r["connect_per_s"]); qr = median(qs, lambda r: r["connect_per_s"])
mc = median(ms, lambda r: r.get("broker", {}).get("cpu_us_per_connect"))
qc = median(qs, lambda r: r.get("broker", {}).get("cpu_us_per_connect"))
failed = lambda runs: sum(r["connect_failed"] for r in runs if r)
rows.append((f"connect {m and m['connected']} clients (median of {conn_rounds}; failed: {failed(ms)} / {failed(qs)})",
             num(mr, ",.0f") + " conn/s", num(qr, ",.0f") + " conn/s", ratio(mr, qr),
             num(mc, ".1f") + " /conn", num(qc, ".1f") + " /conn", ratio(mc, qc)))
m, q = load("memory", "midge"), load("memory", "mosquitto")
mb = m and m.get("broker", {}).get("rss_bytes_per_connection"); qb = q and q.get("broker", {}).get("rss_bytes_per_connection")
rows.append((f"memory per idle{' WebSocket' if ws else ''} connection ({m and m['connected']} / {q and q['connected']} connections)",
             num(mb, ",.0f") + " B", num(qb, ",.0f") + " B", ratio(mb, qb), "", "", ""))
head = ("scenario", "Midge", "Mosquitto", "ratio", "Midge CPU us/msg", "Mosq. CPU us/msg", "CPU ratio")
print()
print(f"Midge / Mosquitto ({cores} cores); ratio = Midge / Mosquitto")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for r in rows:
    if not (r[1].startswith("n/a") and r[2].startswith("n/a")): print("| " + " | ".join(str(c) for c in r) + " |")  # not run
if per_core:
    print()
    print("Per core (each broker pinned to one core; from CPU per message):")
    for line in per_core: print("  " + line)
if scraped:
    print()
    print("Midge with /metrics scraped every second / Midge without:")
    for line in scraped: print("  " + line)
PY
