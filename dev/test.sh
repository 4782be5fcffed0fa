#!/usr/bin/env bash
# The README's test command: installs what is needed, starts the real Kafka and Cassandra,
# runs every test (unit and integration), and stops the services it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
dev/bootstrap.sh
started=()
for svc in kafka cassandra; do
  if ! dev/services.sh status 2>&1 | grep -q "^services: $svc: running"; then started+=("$svc"); fi
done
stop_started() { for svc in "${started[@]}"; do dev/services.sh stop "$svc" || true; done; }
trap stop_started EXIT
dev/services.sh start
# Integration tests that are skipped fail the run (see tests/conftest.py).
.venv/bin/python -m pytest -p no:cacheprovider "$@"
