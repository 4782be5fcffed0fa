#!/usr/bin/env bash
# The README's first command: the whole bridge on this machine. Starts the real local Kafka and
# Cassandra, applies migrations, then runs the receiver and a consumer. With no bot configured
# (TGBRIDGE_TELEGRAM__BOTS in the environment or .env) it runs the demo: a bundled sample goes
# through a local Telegram stand-in and the stored history is printed. Ctrl-C stops everything
# this script started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
dev/bootstrap.sh
BIN="$ROOT/.venv/bin"

started=()
for svc in kafka cassandra; do
  if ! dev/services.sh status 2>&1 | grep -q "^services: $svc: running"; then started+=("$svc"); fi
done
children=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${children[@]}"; do wait "$pid" 2>/dev/null || true; done
  for svc in "${started[@]}"; do dev/services.sh stop "$svc" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dev/services.sh start
# As the Docker image runs tgbridge: two glibc malloc arenas keep the consumer's memory flat.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
"$BIN/tgbridge" migrate

has_bots="$("$BIN/python" -c 'from config import load_settings; print(len(load_settings().telegram.bots))')"
if [[ "$has_bots" == "0" ]]; then
  echo "run: no bot configured (TGBRIDGE_TELEGRAM__BOTS): running the demo" >&2
  "$BIN/tgbridge" demo &
  children+=("$!")
else
  echo "run: bridging $has_bots bot(s); receiver metrics on :9108, consumer metrics on :9109" >&2
  "$BIN/tgbridge" receiver &
  children+=("$!")
  "$BIN/tgbridge" consumer --metrics-port 9109 &
  children+=("$!")
fi
wait -n "${children[@]}"
