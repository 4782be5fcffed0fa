#!/usr/bin/env bash
# The README's test command: installs what is needed, starts the real Kafka and Cassandra,
# runs every test (unit and integration), and stops the services it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
dev/bootstrap.sh
started=()
# Read the status whole first: `grep -q` quits at its first match, and under pipefail the
# SIGPIPE that status then got counted as "not running", so a Kafka the user had started was
# stopped at the end.
status="$(dev/services.sh status 2>&1 || true)"
for svc in kafka cassandra; do
  if ! grep -q "^services: $svc: running" <<<"$status"; then started+=("$svc"); fi
done
stop_started() { for svc in "${started[@]}"; do dev/services.sh stop "$svc" || true; done; }
trap stop_started EXIT
dev/services.sh start
# Integration tests that are skipped fail the run (see tests/conftest.py).
.venv/bin/python -m pytest -p no:cacheprovider "$@"
