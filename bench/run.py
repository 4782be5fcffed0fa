"""One benchmark run, phase by phase, against the local Kafka and Cassandra.

1. pre-fill a fresh topic with N synthetic updates;
2. ceiling: the consumer's statements driven directly, at several concurrency levels (first, so
   that it also warms the store's JVM; the best level runs once more after the ingest);
3. ingest: a consumer process from an empty keyspace to the last offset committed;
4. replay: a consumer with a new group over the same topic into the now-full keyspace;
5. latency: at half the ingest rate, Kafka record -> row and webhook request -> row;
6. soak: minutes at half the ingest rate, watching the consumer's resident memory.

Every name (topic, keyspaces, groups) is new for each run; keyspaces and topics are dropped at
the end unless asked to keep them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench import ceiling, machine, report
from bench.drain import DrainResult, drain
from bench.latency import kafka_to_row
from bench.process import ConsumerProcess, Target, migrate
from bench.procfs import age_seconds, service_pid
from bench.produce import prefill
from bench.profile import Sampler, summarise
from bench.quiet import wait_quiet
from bench.soak import soak
from bench.traffic import CHATS, updates
from bench.webhook_latency import webhook_to_row
from bench.written import drop_keyspace
from config.settings import KafkaSettings, StoreSettings, WorkerSettings
from schema.store import Store
from worker.kafka import client_options
from worker.lifecycle import run_fast

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MIN_INGEST_S = 30.0
#: How old the pre-filled records are stamped (seconds): a backlog, as after an outage. It is
#: older than any live window the consumer accepts (``TGBRIDGE_WORKER__LIVE_WINDOW_S`` <= 3600),
#: so the ingest and the replay read every message's mapping first, as the ceiling does.
BACKLOG_AGE_S = 7200.0

#: Paxos state (MiB) above which the run warns that compacting it will disturb the phases.
PAXOS_NOTE_MIB = 32.0

log = logging.getLogger("bench")


@dataclass
class Options:
    messages: int
    soak_minutes: float
    skip_soak: bool
    quick: bool
    latency_seconds: float
    webhook_seconds: float
    levels: tuple[int, ...]
    consumer_env: dict[str, str]
    keep: bool
    profile: bool
    quiet_wait_s: float
    phases: frozenset[str]
    latency_share: float = 0.5
    #: Absolute rate of the paced phases (msg/s); None: ``latency_share`` of the ingest rate.
    paced_rate: float | None = None
    #: Paced traffic before the measured latency window (the consumer was just started).
    latency_warm_up_s: float = 15.0
    #: Ingests measured, each from an empty keyspace; the figure is the best (see _more_ingests).
    ingest_runs: int = 2
    kafka_port: int = int(os.environ.get("TGBRIDGE_DEV_KAFKA_PORT", "9092"))
    cassandra_port: int = int(os.environ.get("TGBRIDGE_DEV_CASSANDRA_PORT", "9042"))


@dataclass
class Run:
    options: Options
    run_id: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%d_%H%M%S"))
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        return Path("/tmp") / f"tgbridge-bench-{self.run_id}"

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{self.options.kafka_port}",
            topic=f"bench.{self.run_id}",
            dlq_topic=f"bench.{self.run_id}.dlq",
        )

    def target(self, group: str, keyspace: str | None = None) -> Target:
        return Target(
            bootstrap=self.kafka.bootstrap_servers,
            cassandra_port=self.options.cassandra_port,
            topic=self.kafka.topic,
            dlq_topic=self.kafka.dlq_topic,
            keyspace=keyspace or f"bench_{self.run_id}",
            group=f"bench-{self.run_id}-{group}",
        )

    def services(self) -> dict[str, int]:
        pids = {"bench": os.getpid()}
        for name in ("cassandra", "kafka"):
            pid = service_pid(ROOT / ".local", name)
            if pid is not None:
                pids[name] = pid
        return pids

    def say(self, text: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)

    async def quiet(self, phase: str) -> None:
        """Wait for the shared machine to calm down before ``phase``; note it if it did not."""
        if self.options.quiet_wait_s <= 0:
            return
        found = await wait_quiet(self.options.quiet_wait_s)
        self.figures.setdefault("quiet_gate", {})[phase] = found
        if not found["quiet"]:
            self.notes.append(
                f"{phase}: the machine was still busy ({found['busy_cores']} cores) after "
                f"{found['waited_s']:.0f} s of waiting; other work shares this phase's CPU"
            )


#: The nice value dev/services.sh gives the local Kafka and Cassandra (TGBRIDGE_DEV_SERVICES_NICE).
SERVICES_NICE = 19

#: Messages written before the measured phases, to warm the store's JVM (about 15 s here).
WARM_UP_MESSAGES = 8_000

#: A service JVM younger than this at the start of a run is still compiling its hot paths. From
#: a cold start Cassandra spent 1,013 µs of CPU a message on its first 20,000 ceiling messages,
#: 300-590 over the next 100,000, 190-250 after two minutes and 115-160 after an hour (round 27);
#: the first replay after a start paid 66-77 µs a record against 50-58 on the next ones.
YOUNG_JVM_S = 600.0
#: A young JVM is warmed until both have run this long, with at least one write pass and one
#: duplicate pass (the replay's reads of stored rows), and for at most ``JVM_WARM_CAP_S``. In
#: round 27's first warm-up (BS) Cassandra's CPU a message stopped falling after the third
#: pass pair, about 80 s of passes and the topic's drain, 150 s after its start.
JVM_WARM_UNTIL_S = 240.0
JVM_WARM_CAP_S = 240.0
#: Messages per warm-up pass.
JVM_WARM_CHUNK = 40_000


async def execute(options: Options) -> Path:
    """Run the phases; the results file is written even when a phase fails (then marked so)."""
    run = Run(options)
    run.workdir.mkdir(parents=True, exist_ok=True)
    store = await Store.connect(_runner_store_settings(options))
    keyspaces: list[str] = []
    facts = await machine.facts(store, ROOT, run.services())
    for name in ("kafka", "cassandra"):
        nice = facts["nice"].get(name)
        if nice is not None and nice != [SERVICES_NICE]:
            note = (
                f"{name} runs at nice {', '.join(map(str, nice))}, not {SERVICES_NICE} as "
                "dev/services.sh starts it since round 17: the paced phases' latency depends on "
                "it (BENCHMARKS.md, round 17)"
            )
            run.notes.append(note)
            run.say(f"note: {note}")
    paxos = facts.get("cassandra_paxos_state_mib_at_start")
    if paxos is not None and paxos > PAXOS_NOTE_MIB:
        note = (
            f"Cassandra's system.paxos holds {paxos:.0f} MiB of earlier runs' Paxos state; each "
            "flush compacts it whole (7-21 s of a core at 75 MiB), in any phase. It expires after "
            "3 hours (a day for keyspaces migrated before 0002); `bash dev/services.sh reset` "
            "clears it with all local data"
        )
        run.notes.append(note)
        run.say(f"note: {note}")
    load_before = machine.load_average()
    services_before = run.services()
    failure: BaseException | None = None
    try:
        if options.profile:
            await _profile_only(run, store, keyspaces)
        else:
            await _phases(run, store, keyspaces)
    except Exception as exc:
        # Shared services get stopped and restarted under us; keep what was measured.
        failure = exc
        run.notes.append(f"the run stopped early: {type(exc).__name__}: {exc}")
    finally:
        if not options.keep:
            with contextlib.suppress(Exception):
                await drop_run_data(store, keyspaces, run.kafka)
        await store.close()
    services_after = run.services()
    if services_before.get("cassandra") != services_after.get("cassandra") or (
        services_before.get("kafka") != services_after.get("kafka")
    ):
        run.notes.append("a service was stopped or restarted during the run: figures are disturbed")
    document = {
        "run_id": run.run_id,
        "kind": "failed" if failure else _kind(options),
        "command": "python -m bench",
        "options": _options_json(options),
        "machine": facts,
        "load_average_at_start": load_before,
        "load_average_at_end": machine.load_average(),
        "consumer_settings": _consumer_settings(options.consumer_env),
        "traffic": {"chats": CHATS, "hot_chats": 5, "generator": "worker.demo.traffic.generate"},
        "figures": run.figures,
        "table": [r.as_json() for r in report.rows(run.figures)],
        "notes": run.notes,
        "logs": str(run.workdir),
    }
    kind = "profile-" if options.profile else ""
    name = kind + run.run_id + ("-quick" if options.quick else "") + ("-failed" if failure else "")
    path = report.write(RESULTS, name, document)
    print()
    print(report.table(report.rows(run.figures)))
    for note in run.notes:
        print(f"note: {note}")
    print(f"\nresults: {path.relative_to(ROOT)}  logs: {run.workdir}")
    if failure is not None:
        raise SystemExit(1)
    return path


async def _prefilled(run: Run, keyspaces: list[str]) -> list[bytes]:
    o = run.options
    run.say(f"pre-filling {run.kafka.topic} with {o.messages} updates")
    stream = list(updates(o.messages, epoch=0))
    started = time.perf_counter()
    await prefill(run.kafka, stream, age_s=BACKLOG_AGE_S)
    run.figures["prefill"] = {
        "records": len(stream),
        "edits": sum(u.is_edit for u in stream),
        "seconds": round(time.perf_counter() - started, 2),
        "mean_bytes": round(sum(len(u.raw) for u in stream) / len(stream)),
    }
    ingest = run.target("ingest")
    await migrate(ingest, run.workdir)
    keyspaces.append(ingest.keyspace)
    return [u.raw for u in stream]


async def _phases(run: Run, store: Store, keyspaces: list[str]) -> None:
    o = run.options
    raws = await _prefilled(run, keyspaces)
    ingest_target = run.target("ingest")
    run.figures["service_jvms"] = await _warm_young_jvms(run, store, raws, keyspaces)

    if "ceiling" in o.phases:
        # First, so that it also warms the store's JVM before the ingest is measured.
        run.figures["ceiling"] = await _ceiling(run, store, raws, keyspaces)
    else:
        run.figures["warm_up"] = await _warm_up(run, store, raws, keyspaces)

    await run.quiet("ingest")
    run.say("ingest: one consumer process, empty keyspace, to the last offset committed")
    ingest = await drain(
        run.kafka, ingest_target, run.workdir / "consumer-ingest.log", o.consumer_env,
        run.services(), within_s=3600,
    )
    run.figures["ingest"] = ingest.as_json()
    run.say(f"ingest: {ingest.rate:.0f} msg/s over {ingest.seconds:.1f} s")

    if "replay" in o.phases:
        await run.quiet("replay")
        run.say("replay: a new group over the same topic into the full keyspace")
        replay = await drain(
            run.kafka, run.target("replay"), run.workdir / "consumer-replay.log", o.consumer_env,
            run.services(), within_s=3600,
        )
        run.figures["replay"] = replay.as_json()
        run.say(f"replay: {replay.rate:.0f} msg/s")

    if "ceiling" in o.phases:
        # The best level once more beside each ingest (see _ceiling_again).
        await _ceiling_again(run, store, raws, keyspaces)
    ingest = await _more_ingests(
        run, ingest, keyspaces, store, raws if "ceiling" in o.phases else None
    )
    short = short_ingest(ingest.seconds, ingest.rate)
    if short is not None and not o.quick:
        run.notes.append(short)
    del raws
    if not o.phases & {"latency", "webhook", "soak"}:
        return

    paced_rate = o.paced_rate or ingest.rate * o.latency_share
    consumer = ConsumerProcess(ingest_target, run.workdir / "consumer-paced.log", o.consumer_env)
    await consumer.start()
    try:
        await consumer.wait_ready()
        if "latency" in o.phases:
            await run.quiet("latency")
            run.say(
                f"latency: Kafka record -> row at {paced_rate:.0f} msg/s "
                f"for {o.latency_warm_up_s:g} s (warm-up) + {o.latency_seconds:g} s"
            )
            kafka_lat = await kafka_to_row(
                run.kafka, ingest_target, consumer, store, updates(10**9, epoch=1), paced_rate,
                o.latency_seconds, o.latency_warm_up_s, run.services(),
            )
            run.figures["kafka_latency"] = kafka_lat.as_json()
        if "webhook" in o.phases:
            run.say("latency: webhook request -> row through tgbridge receiver")
            try:
                run.figures["webhook_latency"] = await webhook_to_row(
                    run.kafka, ingest_target, consumer, store, updates(10**9, epoch=2), paced_rate,
                    o.webhook_seconds, run.workdir / "receiver.log",
                )
            except Exception as exc:
                traceback.print_exc()
                reason = f"{type(exc).__name__}: {exc}"
                run.figures["webhook_latency"] = {"count": 0, "reason": reason}
        if "soak" not in o.phases:
            pass
        elif o.skip_soak:
            run.figures["soak_skipped"] = "--skip-soak"
        else:
            await run.quiet("soak")
            run.say(f"soak: {o.soak_minutes:g} min at {paced_rate:.0f} msg/s")
            run.figures["soak"] = await soak(
                run.kafka, ingest_target, consumer, updates(10**9, epoch=3), paced_rate,
                o.soak_minutes, run.services(),
            )
        run.figures["paced_consumer_peak_rss_mib"] = consumer.peak_rss_mib()
    finally:
        await consumer.stop()


def short_ingest(seconds: float, rate: float) -> str | None:
    """A note when the ingest the ratio counts (the best) lasted under the issue's 30 s, with
    the ``--messages`` that would have lasted long enough at that rate (and a fifth more)."""
    if seconds >= MIN_INGEST_S:
        return None
    enough = math.ceil(rate * MIN_INGEST_S * 1.2 / 10_000) * 10_000
    return (
        f"the ingest lasted {seconds:.1f} s, under {MIN_INGEST_S:.0f} s: "
        f"run with --messages {enough} or more"
    )


async def _more_ingests(
    run: Run,
    first: DrainResult,
    keyspaces: list[str],
    store: Store,
    raws: list[bytes] | None = None,
) -> DrainResult:
    """Measure the ingest ``ingest_runs - 1`` more times, each into its own empty keyspace.

    On this shared VM a phase can only be slowed down, never sped up (the host takes cores back,
    neighbours fill caches), and by as much as half. Held against one ingest, the ratio would
    mostly measure which of them the host disturbed. So the ingest is measured more than once
    and the best counts; with ``raws`` (the ceiling is measured), the ceiling's best level runs
    once more after each one, so both sides of the ratio get as many runs at the same moments.
    Every rate is kept in ``ingest["runs_msg_per_s"]``; the peak memory is the highest of all.
    The paced phases use the first run's keyspace.
    """
    runs = [first]
    for n in range(2, run.options.ingest_runs + 1):
        target = run.target(f"ingest{n}", f"bench_{run.run_id}_ingest{n}")
        await migrate(target, run.workdir)
        keyspaces.append(target.keyspace)
        await run.quiet(f"ingest{n}")
        run.say(f"ingest again ({n} of {run.options.ingest_runs}), into an empty keyspace")
        again = await drain(
            run.kafka, target, run.workdir / f"consumer-ingest{n}.log", run.options.consumer_env,
            run.services(), within_s=3600,
        )
        run.say(f"ingest: {again.rate:.0f} msg/s over {again.seconds:.1f} s")
        runs.append(again)
        if raws is not None:
            await _ceiling_again(run, store, raws, keyspaces)
    best = max(runs, key=lambda r: r.rate)
    figure = best.as_json()
    figure["runs_msg_per_s"] = [round(r.rate, 1) for r in runs]
    figure["peak_rss_mib"] = round(max(r.peak_rss_mib for r in runs), 1)
    run.figures["ingest"] = figure
    return best


def _jvm_ages(run: Run) -> dict[str, float]:
    ages = {}
    for name, pid in run.services().items():
        age = None if name == "bench" else age_seconds(pid)
        if age is not None:
            ages[name] = round(age, 1)
    return ages


async def _warm_young_jvms(
    run: Run, store: Store, raws: list[bytes], keyspaces: list[str]
) -> dict[str, Any]:
    """Warm Kafka's and Cassandra's JVMs first when either started less than 10 minutes ago.

    ``make bench`` starts the services and runs the benchmark straight away. Measured on JVMs
    that are still compiling, the first phases pay for the compiling: in round 27's BR the first
    ingest ran 28% slower than the second, and both replays measured within minutes of a
    start missed 3x (BO, BR) where 41 other runs met it. So a run that finds a young JVM first
    drives the ceiling's statements (new messages, then the same ones again as duplicates, so
    the replay's reads of stored rows are compiled too) into a throwaway keyspace, and pulls the
    pre-filled topic through a consumer (Kafka's fetch path), until both JVMs are four minutes
    old. Services already warm are left alone. The passes are reported, not measured against.
    """
    ages = _jvm_ages(run)
    found: dict[str, Any] = {"age_s_at_start": ages}
    if not ages or min(ages.values()) >= YOUNG_JVM_S or run.options.quick or not raws:
        return found
    run.say(
        "warm-up: the services started "
        + ", ".join(f"{n} {a:.0f} s" for n, a in sorted(ages.items()))
        + " ago; warming their JVMs before measuring (not measured)"
    )
    started = time.monotonic()
    # Kafka's fetch path: one consumer through the pre-filled topic, as the ingest does.
    target = run.target("jvm-warm", f"bench_{run.run_id}_jvmwarm")
    await migrate(target, run.workdir)
    keyspaces.append(target.keyspace)
    await drain(
        run.kafka, target, run.workdir / "consumer-jvm-warm.log", run.options.consumer_env,
        run.services(), within_s=3600,
    )
    await drop_keyspace(store, target.keyspace)
    passes: list[dict[str, Any]] = []
    n = 0
    while True:
        chunk = raws[(n * JVM_WARM_CHUNK) % len(raws):][:JVM_WARM_CHUNK]
        n += 1
        ks = f"bench_{run.run_id}_jvmwarm{n}"
        await migrate(run.target("jvm-warm", ks), run.workdir)
        keyspaces.append(ks)
        messages = ceiling.decode_all(chunk)
        for kind in ("new", "duplicates"):
            result = await ceiling.drive(store, ks, messages, 128, run.services())
            cass = result.cpu_cores.get("cassandra")
            passes.append({
                "kind": kind,
                "messages": len(messages),
                "messages_per_s": round(result.rate, 1),
                "cassandra_us_per_message": (
                    None if cass is None or result.rate <= 0 else round(cass / result.rate * 1e6)
                ),
            })
        await drop_keyspace(store, ks)
        ages = _jvm_ages(run)
        elapsed = time.monotonic() - started
        if min(ages.values(), default=JVM_WARM_UNTIL_S) >= JVM_WARM_UNTIL_S or (
            elapsed >= JVM_WARM_CAP_S
        ):
            break
    found.update(warm_up_s=round(time.monotonic() - started, 1), passes=passes)
    run.say(f"warm-up: done after {found['warm_up_s']:.0f} s ({len(passes)} passes)")
    return found


async def _warm_up(
    run: Run, store: Store, raws: list[bytes], keyspaces: list[str]
) -> dict[str, Any]:
    """The ceiling's statements for a while into a throwaway keyspace, not measured.

    Cassandra's JIT compiles its write and Paxos paths during the first tens of thousands of
    requests; without this the first measured phase (the ingest) runs on a colder store than the
    ceiling that follows it, and the ratio says more about the JVM than about the consumer.
    """
    ks = f"bench_{run.run_id}_warm"
    await migrate(run.target("warm", ks), run.workdir)
    keyspaces.append(ks)
    count = min(len(raws), WARM_UP_MESSAGES)
    messages = ceiling.decode_all(raws[:count])
    run.say(f"warm-up: {count} messages straight into a throwaway keyspace (not measured)")
    result = await ceiling.drive(store, ks, messages, 64, run.services())
    await drop_keyspace(store, ks)
    return {"messages": count, "seconds": round(result.seconds, 1)}


async def _ceiling(
    run: Run, store: Store, raws: list[bytes], keyspaces: list[str]
) -> dict[str, Any]:
    """Every level runs over all the traffic into its own fresh keyspace; the best one counts.

    A prefix would not do: its share of first sightings of a chat (a channel claim and a chat
    write each) is higher than the whole run's, and one noisy level would pick the winner.
    """
    messages = ceiling.decode_all(raws)
    runs = []
    for level in run.options.levels:
        ks = f"bench_{run.run_id}_c{level}"
        await migrate(run.target("ceiling", ks), run.workdir)
        keyspaces.append(ks)
        await run.quiet(f"ceiling_{level}")
        result = await ceiling.drive(store, ks, messages, level, run.services())
        run.say(f"ceiling: concurrency {level}: {result.rate:.0f} msg/s")
        runs.append(result)
        await drop_keyspace(store, ks)
    best = max(runs, key=lambda r: r.rate)
    return {"levels": [r.as_json() for r in runs], "best": best.as_json()}


async def _ceiling_again(
    run: Run, store: Store, raws: list[bytes], keyspaces: list[str]
) -> None:
    """The best level once more, right after an ingest, on a store as warm and as full of
    compaction work as the ingest left it.

    Each ingest gets one such run beside it, so the ratio can hold the best ingest against the
    best of as many ceiling runs at the chosen level, measured at the same moments of the run
    (``ceiling["again_runs"]``, ``report.rows``). The levels' own runs only choose the level:
    the best of four runs on a host whose speed moves by a fifth is partly the luckiest one.
    """
    found = run.figures["ceiling"]
    level = found["best"]["concurrency"]
    n = len(found.get("again_runs", [])) + 1
    ks = f"bench_{run.run_id}_c{level}_again{n}"
    await migrate(run.target("ceiling", ks), run.workdir)
    keyspaces.append(ks)
    await run.quiet(f"ceiling_{level}_again{n}")
    again = await ceiling.drive(store, ks, ceiling.decode_all(raws), level, run.services())
    run.say(f"ceiling: concurrency {level} again, after the ingest: {again.rate:.0f} msg/s")
    await drop_keyspace(store, ks)
    found.setdefault("again_runs", []).append(again.as_json())
    found.setdefault("again", again.as_json())  # the first, as runs before round 9 had it
    if again.rate > found["best"]["messages_per_s"]:
        found["best"] = again.as_json()


async def _profile_only(run: Run, store: Store, keyspaces: list[str]) -> None:
    """Pre-fill and ingest with py-spy attached, then (with the replay phase) the replay too;
    the rates are perturbed and only indicative."""
    o = run.options
    await _prefilled(run, keyspaces)
    await run.quiet("ingest")
    run.say("profile: ingest with py-spy attached")
    ingest = await _sampled(run, "ingest")
    run.figures["ingest"] = ingest.as_json()
    run.say(f"profile: ingest {ingest.rate:.0f} msg/s under py-spy")
    if "replay" in o.phases:
        await run.quiet("replay")
        run.say("profile: replay (every record a duplicate) with py-spy attached")
        replay = await _sampled(run, "replay")
        run.figures["replay"] = replay.as_json()
        run.say(f"profile: replay {replay.rate:.0f} msg/s under py-spy")


async def _sampled(run: Run, phase: str) -> DrainResult:
    """One consumer drained to the topic's end under py-spy; its profile is ``profile`` (the
    ingest) or ``profile_<phase>`` in the figures."""
    output = run.workdir / f"{phase}.collapsed"
    sampler: Sampler | None = None

    async def attach(consumer: ConsumerProcess) -> None:
        nonlocal sampler
        sampler = Sampler(consumer.pid, output)
        await sampler.start()

    try:
        drained = await drain(
            run.kafka, run.target(phase), run.workdir / f"consumer-{phase}.log",
            run.options.consumer_env, run.services(), within_s=3600, on_start=attach,
        )
    finally:
        if sampler is not None:
            await sampler.stop()
    key = "profile" if phase == "ingest" else f"profile_{phase}"
    run.figures[key] = summarise(output) if output.exists() else {"error": "no py-spy output"}
    run.figures[key]["collapsed_stacks"] = str(output)
    return drained


async def drop_run_data(store: Store, keyspaces: list[str], kafka: KafkaSettings) -> None:
    """Drop a run's keyspaces and delete its topics (``kafka.topic`` and its dead letters)."""
    for ks in keyspaces:
        try:
            await drop_keyspace(store, ks)
        except Exception as exc:
            log.warning("could not drop keyspace %s: %s", ks, exc)
    admin = AIOKafkaAdminClient(**client_options(kafka), client_id="tgbridge-bench-clean")
    try:
        await admin.start()
        await admin.delete_topics([kafka.topic, kafka.dlq_topic])
    except Exception as exc:
        log.warning("could not delete the run's topics: %s", exc)
    finally:
        await admin.close()


def write_side_result(
    kind: str, run_id: str, figures: dict[str, Any], rows: list[report.Row], **extra: Any
) -> None:
    """Write a side command's result to ``bench/results/<kind>-<run_id>.json`` (``python -m
    bench.<kind>``: its arguments, the git revision, the load, ``extra``) and print its table."""
    document = {
        "run_id": run_id,
        "kind": kind,
        "command": f"python -m bench.{kind} " + " ".join(sys.argv[1:]),
        **extra,
        "revision": machine.git_revision(ROOT),
        "load_average": machine.load_average(),
        "figures": figures,
        "table": [r.as_json() for r in rows],
    }
    path = report.write(RESULTS, f"{kind}-{run_id}", document)
    print(report.table(rows))
    print(f"\nresults: {path.relative_to(ROOT)}")


def _kind(o: Options) -> str:
    if o.profile:
        return "profile"
    if o.quick:
        return "quick"
    every = {"replay", "ceiling", "latency", "webhook", "soak"}
    return "full" if o.phases >= every and not o.skip_soak else "partial"


def _options_json(o: Options) -> dict[str, Any]:
    return {
        "messages": o.messages,
        "soak_minutes": None if o.skip_soak else o.soak_minutes,
        "latency_seconds": o.latency_seconds,
        "webhook_seconds": o.webhook_seconds,
        "ceiling_levels": list(o.levels),
        "ingest_runs": o.ingest_runs,
        "consumer_env": o.consumer_env,
        "quiet_wait_s": o.quiet_wait_s,
        "phases": sorted(o.phases),
        "latency_share_of_ingest": o.latency_share,
        "paced_rate": o.paced_rate,
        "latency_warm_up_s": o.latency_warm_up_s,
    }


def _runner_store_settings(options: Options) -> StoreSettings:
    """The runner's own store (the ceiling, read-backs): the consumer's store overrides apply to
    it too, so the ceiling drives its statements through the same client path as the consumer."""
    prefix = "TGBRIDGE_STORE__"
    same = {
        k.removeprefix(prefix).lower(): v
        for k, v in options.consumer_env.items()
        if k.startswith(prefix)
    }
    return StoreSettings(**{**same, "port": options.cassandra_port})


def _consumer_settings(overrides: dict[str, str]) -> dict[str, Any]:
    """The consumer's defaults that shape throughput; ``overrides`` were set on top of them."""
    worker = WorkerSettings().model_dump(
        include={
            "concurrency", "batch_max_records", "max_inflight_bytes", "switch_interval_ms",
            "live_window_s",
        }
    )
    store = StoreSettings().model_dump(
        include={
            "write_consistency", "read_consistency", "serial_consistency", "io", "lean_requests"
        }
    )
    return {
        "worker": worker,
        "store": store,
        "partitions": KafkaSettings().partitions,
        "env_overrides": overrides,
        "bench_process": {"event_loop": "uvloop", "switch_interval_ms": BENCH_SWITCH_INTERVAL_MS},
    }


#: The benchmark process (ceiling, producers, read-backs) runs as the consumer does: on uvloop
#: with the consumer's GIL switch interval, so the ceiling gets the same runtime as the consumer.
BENCH_SWITCH_INTERVAL_MS = WorkerSettings().switch_interval_ms


def main(options: Options) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_fast(execute(options), BENCH_SWITCH_INTERVAL_MS)
