.DEFAULT_GOAL := help
.PHONY: help run test services stop-services status lint bench

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run:  ## Run the whole bridge locally on real Kafka and Cassandra (a demo without a bot token)
	@dev/run.sh

test:  ## Install, start the real services, run every test, stop what was started
	@dev/test.sh

services:  ## Start the local Kafka and Cassandra (idempotent)
	@dev/services.sh start

stop-services:  ## Stop the local Kafka and Cassandra started by dev/services.sh
	@dev/services.sh stop

status:  ## Show what the local services are doing
	@dev/services.sh status

lint:  ## ruff and mypy
	@.venv/bin/ruff check . && .venv/bin/mypy config schema consumers worker

bench:  ## Run the benchmarks (see BENCHMARKS.md)
	@dev/bootstrap.sh && dev/services.sh start && .venv/bin/python -m bench
