#!/usr/bin/env bash
# Installs the test peers (Debian packages, npm packages), builds, runs every test, and prints
# "N passed, N failed" counted from the TRX results. CI (.ci/run) calls this same script.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 || need_apt+=(python3-paho-mqtt)  # Debian's interpreter, as the tests use
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)  # the cluster's tests (JetStream: -js)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)  # PROXY protocol tests: send-proxy, send-proxy-v2
command -v clang >/dev/null 2>&1 || need_apt+=(clang)                  # Native AOT links with clang and zlib
[ -e /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
# The dashboard's tests drive Debian's Chromium with Playwright (DashboardTests): no browser download.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing test peers: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# MQTT.js (tests/Midge.Integration.Tests/peers/node): installed from its package-lock.json when missing.
node_peers=tests/Midge.Integration.Tests/peers/node
if [ ! -d "$node_peers/node_modules" ]; then
  echo "installing test peers: MQTT.js (npm ci in $node_peers)"
  (cd "$node_peers" && npm ci --no-audit --no-fund)
fi
# Debian's python3-paho-mqtt lives in the system interpreter's path; make sure tests use that one.
export MIDGE_PYTHON="${MIDGE_PYTHON:-/usr/bin/python3}"

results=.test-results
rm -rf "$results"
dotnet build Midge.slnx -c Release -nologo -v q
set +e
dotnet test Midge.slnx -c Release --no-build --logger "trx" --results-directory "$results" -- RunConfiguration.TestSessionTimeout=1200000
rc=$?
# The protocol suites again through a three-node cluster (a nats-server with JetStream, three nodes, a balancer that
# sends each connection to a random node: docs/cluster.md): every client on a random node must see one broker.
MIDGE_TEST_CLUSTER_NODES=3 dotnet test tests/Midge.Integration.Tests -c Release --no-build --filter "Suite=Protocol" \
  --logger "trx;LogFileName=integration-cluster.trx" --results-directory "$results" \
  -- RunConfiguration.TestSessionTimeout=1200000 || rc=1
# Code style (.editorconfig): what `dotnet format` would change fails the run, as a reviewer would refuse it.
if ! dotnet format Midge.slnx --verify-no-changes --severity warn --no-restore -v q; then
  echo "error: the code is not formatted as .editorconfig says; run: dotnet format Midge.slnx --severity warn"
  rc=1
fi
# The integration tests again, against the broker published with Native AOT: it must keep publishing and behave
# as the JIT build does (docs/benchmarks.md).
case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) rid="" ;; esac
if [ -n "$rid" ]; then
  aot_bin="$PWD/$results/aot-bin"
  if dotnet publish src/Midge/Midge.csproj -c Release -r "$rid" -p:PublishAot=true -o "$aot_bin" -nologo -v q; then
    MIDGE_EXECUTABLE="$aot_bin/midge" dotnet test tests/Midge.Integration.Tests -c Release --no-build \
      --logger "trx;LogFileName=integration-native-aot.trx" --results-directory "$results" \
      -- RunConfiguration.TestSessionTimeout=1200000 || rc=1
  else
    echo "error: the Native AOT publish failed"
    rc=1
  fi
fi
set -e
python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = 0
for f in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(f).getroot().find(".//{*}ResultSummary/{*}Counters")
    passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
print(f"{passed} passed, {failed} failed")
PY
exit $rc
