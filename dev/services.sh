#!/usr/bin/env bash
# Starts, stops and reports a real one-node Kafka (KRaft) and a real one-node Apache Cassandra 5,
# run as plain JVM processes from Maven Central jars. Jars, data and logs live in .local/.
#
#   dev/services.sh start [kafka|cassandra]   start (idempotent) and wait until ready
#   dev/services.sh stop  [kafka|cassandra]   stop only the processes this script started
#   dev/services.sh status                    what is running, where the logs are
#   dev/services.sh reset                     stop, then delete all local data
#
# Ports: TGBRIDGE_DEV_KAFKA_PORT (9092), TGBRIDGE_DEV_CASSANDRA_PORT (9042); the controller and
# storage ports are those plus one thousand-ish offsets below. JVM options (heap, collector):
# TGBRIDGE_DEV_KAFKA_JVM, TGBRIDGE_DEV_CASSANDRA_JVM. Scheduling priority of both JVMs:
# TGBRIDGE_DEV_SERVICES_NICE (19, added to the nice value this script runs at and capped at 19;
# 0 gives them the same priority as everything else).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/dev/services"
STATE="$ROOT/.local"
KAFKA_PORT="${TGBRIDGE_DEV_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${TGBRIDGE_DEV_KAFKA_CONTROLLER_PORT:-9093}"
CASSANDRA_PORT="${TGBRIDGE_DEV_CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${TGBRIDGE_DEV_CASSANDRA_STORAGE_PORT:-7000}"
KAFKA_DEADLINE="${TGBRIDGE_DEV_KAFKA_DEADLINE:-90}"
CASSANDRA_DEADLINE="${TGBRIDGE_DEV_CASSANDRA_DEADLINE:-180}"
# Heap and collector of each JVM (space-separated java options). G1's default pause goal (200 ms)
# let Cassandra's young collections grow to 65-170 ms on two cores, and every statement in flight
# waited that long; with a 20 ms goal they take 10-45 ms (BENCHMARKS.md, round 4).
KAFKA_JVM="${TGBRIDGE_DEV_KAFKA_JVM:--Xms256m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1}"
CASSANDRA_JVM="${TGBRIDGE_DEV_CASSANDRA_JVM:--Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
# The two JVMs run at nice 19, the lowest priority. In production the store and the broker have
# machines of their own; here they share two cores with tgbridge, whose consumer does its work on
# one thread, and Cassandra's pool threads wake up some 36,000 times a second. A preempted
# consumer holds back every record behind it; a JVM thread that waits a moment holds back one
# request, and the JVMs then take their work in larger bursts (Cassandra used 0.47-0.49 core
# against 0.55-0.58 for the same traffic). At 2,200 msg/s the p99 from Kafka record to row was
# 850-6,800 ms at nice 5, 41-61 ms at nice 12 and 36-40 ms at nice 19 (BENCHMARKS.md, round 17;
# at 800 msg/s on a slower host nice 5 had taken it from 72-288 to 54-67 ms, round 16). Nice
# only orders who waits: the JVMs still get every cycle tgbridge leaves.
SERVICES_NICE="${TGBRIDGE_DEV_SERVICES_NICE:-19}"

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_of() {  # the pid recorded for a service, if that process is still ours and alive
  local pidfile="$STATE/$1/pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$STATE/$1"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

fetch_jars() {  # $1 = kafka|cassandra; Maven's cache makes every run after the first quick
  local lib="$STATE/$1/lib"
  if [[ -f "$lib/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || die "mvn (Maven 3) is needed to fetch the $1 jars: apt-get install maven"
  command -v java >/dev/null || die "java 17 is needed to run $1: apt-get install openjdk-17-jre-headless"
  say "fetching $1 jars from Maven Central (first run only)"
  rm -rf "$lib"
  mkdir -p "$lib"
  if ! mvn -q -B -f "$SRC/pom.xml" -P"$1" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >"$STATE/$1-fetch.log" 2>&1; then
    die "fetching the $1 jars failed; see $STATE/$1-fetch.log"
  fi
  touch "$lib/.complete"
}

render() {  # $1 template, $2 output, then KEY=VALUE pairs
  local tpl="$1" out="$2"; shift 2
  local text; text="$(cat "$tpl")"
  for kv in "$@"; do text="${text//@${kv%%=*}@/${kv#*=}}"; done
  printf '%s\n' "$text" >"$out"
}

wait_ready() {  # $1 name, $2 port, $3 deadline seconds, $4 pid
  local name="$1" port="$2" deadline=$((SECONDS + $3)) pid="$4"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited during start-up; last lines of $STATE/$name/$name.log:"
      tail -n 30 "$STATE/$name/$name.log" >&2 || true
      return 1
    fi
    if port_open "$port"; then return 0; fi
    sleep 1
  done
  say "$name was not ready on port $port within $3 s; its log is $STATE/$name/$name.log"
  tail -n 30 "$STATE/$name/$name.log" >&2 || true
  return 1
}

start_kafka() {
  local dir="$STATE/kafka" pid
  if pid="$(pid_of kafka)"; then say "kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $p is already taken by another program; stop it or set TGBRIDGE_DEV_KAFKA_PORT"
  done
  fetch_jars kafka
  mkdir -p "$dir/data"
  render "$SRC/kafka.properties" "$dir/server.properties" \
    PORT="$KAFKA_PORT" CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" DATA="$dir/data"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cid; cid="$(java -cp "$dir/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    java -Dlog4j2.configurationFile="$SRC/log4j2.properties" -cp "$dir/lib/*" kafka.tools.StorageTool \
      format -t "$cid" -c "$dir/server.properties" --ignore-formatted >"$dir/format.log" 2>&1 \
      || die "formatting the kafka log dir failed; see $dir/format.log"
  fi
  local attempt
  for attempt in 1 2; do
    # shellcheck disable=SC2086  # KAFKA_JVM is a list of options
    nohup nice -n "$SERVICES_NICE" java $KAFKA_JVM \
      -Dlog4j2.configurationFile="$SRC/log4j2.properties" -Dtgbridge.home="$dir" \
      -cp "$dir/lib/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    if wait_ready kafka "$KAFKA_PORT" "$KAFKA_DEADLINE" "$pid"; then
      say "kafka ready on 127.0.0.1:$KAFKA_PORT (pid $pid, log $dir/kafka.log)"
      return 0
    fi
    stop_one kafka
    say "kafka start attempt $attempt failed"
  done
  return 1
}

start_cassandra() {
  local dir="$STATE/cassandra" pid
  if pid="$(pid_of cassandra)"; then say "cassandra already running (pid $pid) on 127.0.0.1:$CASSANDRA_PORT"; return 0; fi
  for p in "$CASSANDRA_PORT" "$CASSANDRA_STORAGE_PORT"; do
    port_open "$p" && die "port $p is already taken by another program; stop it or set TGBRIDGE_DEV_CASSANDRA_PORT"
  done
  fetch_jars cassandra
  mkdir -p "$dir/data" "$dir/logs"
  render "$SRC/cassandra.yaml" "$dir/cassandra.yaml" PORT="$CASSANDRA_PORT" STORAGE_PORT="$CASSANDRA_STORAGE_PORT"
  local jamm; jamm="$(ls "$dir"/lib/jamm-*.jar | head -n 1)"
  local opens=() m
  for m in java.lang.module jdk.internal.loader jdk.internal.ref jdk.internal.reflect jdk.internal.math \
           jdk.internal.module jdk.internal.util.jar sun.nio.ch java.io java.lang.reflect java.lang java.util java.nio; do
    opens+=("--add-opens=java.base/$m=ALL-UNNAMED")
  done
  # shellcheck disable=SC2086  # CASSANDRA_JVM is a list of options
  nohup nice -n "$SERVICES_NICE" java $CASSANDRA_JVM -Xss512k \
    -javaagent:"$jamm" \
    --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED \
    --add-exports=java.management/com.sun.jmx.remote.security=ALL-UNNAMED \
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED \
    --add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED \
    --add-exports=java.sql/java.sql=ALL-UNNAMED \
    --add-exports=java.base/java.lang.ref=ALL-UNNAMED \
    --add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED \
    "${opens[@]}" \
    --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED \
    -Dio.netty.tryReflectionSetAccessible=true \
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true \
    -Dchronicle.analytics.disable=true \
    -Dcassandra-foreground=yes \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dcassandra.storagedir="$dir/data" \
    -Dcassandra.logdir="$dir/logs" \
    -Dlogback.configurationFile="$SRC/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000 \
    -Dcassandra.unsafesystem=true \
    -Dtgbridge.home="$dir" \
    -cp "$dir/lib/*" org.apache.cassandra.service.CassandraDaemon >"$dir/cassandra.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  if wait_ready cassandra "$CASSANDRA_PORT" "$CASSANDRA_DEADLINE" "$pid"; then
    say "cassandra ready on 127.0.0.1:$CASSANDRA_PORT (pid $pid, log $dir/cassandra.log)"
    return 0
  fi
  stop_one cassandra
  return 1
}

stop_one() {
  local pid i
  if ! pid="$(pid_of "$1")"; then say "$1 not running (started by this script)"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then say "$1 did not stop in 20 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$STATE/$1/pid"
  say "$1 stopped"
}

status() {
  local name port pid rc=0
  for name in kafka cassandra; do
    port=$KAFKA_PORT; [[ $name == cassandra ]] && port=$CASSANDRA_PORT
    if pid="$(pid_of "$name")"; then
      if port_open "$port"; then say "$name: running, pid $pid, 127.0.0.1:$port, log $STATE/$name/$name.log"
      else say "$name: starting, pid $pid, log $STATE/$name/$name.log"; rc=1; fi
    else
      say "$name: stopped"; rc=1
    fi
  done
  return $rc
}

cmd="${1:-status}"; which="${2:-all}"
mkdir -p "$STATE"
case "$cmd" in
  start)
    [[ "$SERVICES_NICE" =~ ^[0-9]+$ ]] && ((SERVICES_NICE <= 19)) \
      || die "TGBRIDGE_DEV_SERVICES_NICE must be a whole number from 0 to 19, not '$SERVICES_NICE'"
    case "$which" in
      kafka) start_kafka ;;
      cassandra) start_cassandra ;;
      all)  # Cassandra is the slow one; the two JVMs start side by side
        start_cassandra & c=$!
        k=0; start_kafka || k=$?
        wait "$c" && c=0 || c=$?
        ((k == 0 && c == 0)) || exit 1 ;;
      *) die "unknown service $which (kafka, cassandra)" ;;
    esac ;;
  stop)
    case "$which" in
      kafka|cassandra) stop_one "$which" ;;
      all) stop_one kafka; stop_one cassandra ;;
      *) die "unknown service $which (kafka, cassandra)" ;;
    esac ;;
  status) status ;;
  reset) stop_one kafka; stop_one cassandra; rm -rf "$STATE/kafka/data" "$STATE/cassandra/data"; say "local data removed" ;;
  *) die "usage: dev/services.sh start|stop|status|reset [kafka|cassandra]" ;;
esac
