"""``python -m bench``: the consumer's throughput, latency and memory on this machine.

See BENCHMARKS.md for what each figure means. Needs the local Kafka and Cassandra
(``dev/services.sh start``) and the project's venv.
"""

from __future__ import annotations

import argparse

from bench.run import Options, main

# Enough for an ingest of at least 30 s (the minimum) on the fastest hosts this VM lands on:
# 180,000 (since round 17, whose host ingested 4,062-4,438 msg/s) lasted 29.6 s on round 24's
# host at 6,077 msg/s; 240,000 lasts 30 s up to 8,000 msg/s, and about 2 minutes on the slower
# hosts of round 16 (1,600-2,000 msg/s). See BENCHMARKS.md, "Round 24".
FULL_MESSAGES = 240_000
QUICK_MESSAGES = 4_000
# The soak's default length. Its slope is fitted over the second half, and at ~950 msg/s on this
# machine the consumer's resident memory settles within 15 minutes of paced traffic (a backlog's
# buffers come and go, the allocator reaches its high-water mark) and then stays put: flat at
# 89.2 MiB from minute 15 to minute 60 in a one-hour soak. With 10 minutes, the fitted half was
# that settling. See BENCHMARKS.md, "Round 15".
FULL_SOAK_MINUTES = 30.0
PHASES = ("replay", "ceiling", "latency", "webhook", "soak")


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TGBRIDGE_"):
        raise argparse.ArgumentTypeError("expected TGBRIDGE_NAME=value")
    return name, value


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, help=f"updates to pre-fill (default {FULL_MESSAGES}, "
                   f"--quick {QUICK_MESSAGES})")
    p.add_argument("--soak-minutes", type=float, default=None,
                   help=f"soak length (default {FULL_SOAK_MINUTES:g}, quick 0.5)")
    p.add_argument("--skip-soak", action="store_true", help="leave the soak out")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: few messages, short phases, a half-minute soak")
    p.add_argument("--latency-seconds", type=float,
                   help="paced Kafka phase (default 60, quick 10)")
    p.add_argument("--latency-warm-up", type=float,
                   help="paced traffic before the measured Kafka latency window, reported apart "
                   "(default 15, quick 3)")
    p.add_argument("--webhook-seconds", type=float,
                   help="paced webhook phase (default 60, quick 10)")
    p.add_argument("--latency-share", type=float, default=0.5,
                   help="paced phases run at this share of the measured ingest rate (default 0.5)")
    p.add_argument("--paced-rate", type=float, default=None,
                   help="paced phases run at this many msg/s instead (to compare runs at one rate)")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="before each phase, wait up to this many seconds for an idle machine "
                   "(default 300, quick 0)")
    p.add_argument("--ingest-runs", type=int, default=None,
                   help="ingests measured, each into an empty keyspace; the best counts "
                   "(default 2, quick 1)")
    p.add_argument("--levels", default=None,
                   help="ceiling concurrency levels, comma-separated (default 16,64,128,256)")
    p.add_argument("--consumer-env", type=_env_pair, action="append", default=[],
                   metavar="TGBRIDGE_NAME=value",
                   help="extra setting for the consumer process (TGBRIDGE_STORE__* ones also for "
                   "the runner's own store, so the ceiling uses the same client path)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help="phases after pre-fill and ingest, comma-separated (default: all of "
                   f"{','.join(PHASES)})")
    p.add_argument("--keep", action="store_true", help="keep the run's keyspaces and topics")
    p.add_argument("--profile", action="store_true",
                   help="only pre-fill, ingest and replay (unless left out of --phases), "
                   "with py-spy sampling the consumer")
    a = p.parse_args(argv)
    quick = a.quick
    levels = a.levels or ("16,64" if quick else "16,64,128,256")
    phases = frozenset(x.strip() for x in a.phases.split(",") if x.strip())
    if phases - set(PHASES):
        p.error(f"unknown phase(s): {', '.join(sorted(phases - set(PHASES)))}")
    return Options(
        messages=a.messages or (QUICK_MESSAGES if quick else FULL_MESSAGES),
        soak_minutes=a.soak_minutes if a.soak_minutes is not None else (
            0.5 if quick else FULL_SOAK_MINUTES),
        skip_soak=a.skip_soak,
        quick=quick,
        latency_seconds=a.latency_seconds or (10.0 if quick else 60.0),
        latency_warm_up_s=a.latency_warm_up if a.latency_warm_up is not None else (
            3.0 if quick else 15.0),
        webhook_seconds=a.webhook_seconds or (10.0 if quick else 60.0),
        levels=tuple(int(x) for x in levels.split(",")),
        consumer_env=dict(a.consumer_env),
        keep=a.keep,
        profile=a.profile,
        phases=phases,
        latency_share=a.latency_share,
        paced_rate=a.paced_rate,
        ingest_runs=a.ingest_runs or (1 if quick else 2),
        quiet_wait_s=a.quiet_wait if a.quiet_wait is not None else (0.0 if quick else 300.0),
    )


if __name__ == "__main__":
    main(parse())
