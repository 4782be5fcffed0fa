# syntax=docker/dockerfile:1
#
# One image for every tgbridge process; the compose command picks which one
# (migrate, receiver, consumer, history, export, webhook ...).

# Both stages must use the same base: the virtualenv built in the first is copied as is.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

# Compilers live only in this stage, for any dependency without a wheel for the target platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .

# Wheels first (the project's and every dependency's, pinned by constraints.txt), then an
# install from those wheels alone, so nothing unpinned can slip in.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels --constraint constraints.txt . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --constraint constraints.txt tgbridge \
 && /opt/venv/bin/tgbridge --help >/dev/null


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="tgbridge" \
      org.opencontainers.image.description="Every message a Telegram bot sees, stored exactly once in ScyllaDB, through Kafka."

# MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas (the CQL driver's I/O thread, uvloop's
# pool) held on to freed memory; with two arenas 10- and 20-minute consumer soaks stayed flat
# (0.0-0.3 MiB/h against 13.2-16.6 MiB/h), and a 45-minute one rose 3 MiB in two steps after
# 20 flat minutes (BENCHMARKS.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    TGBRIDGE_WORKER__LOG_FORMAT=json

RUN groupadd --system --gid 10001 tgbridge \
 && useradd --system --uid 10001 --gid tgbridge --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin tgbridge

COPY --from=build /opt/venv /opt/venv

# The settings also read ./.env: mount one at /app/.env, or pass variables (compose does).
WORKDIR /app
USER 10001:10001

# 8080: the receiver's webhook; 9108: /metrics, /healthz and /readyz of every process.
EXPOSE 8080 9108

# slim has no curl; /healthz answers as long as the event loop runs. Shell form so the
# port follows TGBRIDGE_WORKER__METRICS_PORT at run time.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${TGBRIDGE_WORKER__METRICS_PORT:-9108}/healthz', timeout=4)" || exit 1

ENTRYPOINT ["tgbridge"]
CMD ["--help"]
