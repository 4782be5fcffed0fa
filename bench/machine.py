"""Facts about the machine and the software a run measured, for the results file."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from schema.store import Store

PACKAGES = ("tgbridge", "aiokafka", "scylla-driver", "orjson", "aiohttp", "prometheus-client")


def _first(path: str, pattern: str) -> str | None:
    try:
        m = re.search(pattern, Path(path).read_text(), re.M)
    except OSError:
        return None
    return m[1].strip() if m else None


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def kafka_version(state_dir: Path) -> str | None:
    """The broker's version, from the jar ``dev/services.sh`` runs."""
    for jar in sorted((state_dir / "kafka" / "lib").glob("kafka-server-*.jar")):
        m = re.fullmatch(r"kafka-server-(.+)\.jar", jar.name)
        if m:
            return m[1]
    return None


def paxos_state_mib(state_dir: Path) -> float | None:
    """Size on disk of the local Cassandra's ``system.paxos`` table.

    Every lightweight transaction leaves Paxos state there for the table's ``gc_grace_seconds``
    (three hours for the claimed tables since migration 0002; a day before), whatever happens to
    the keyspace afterwards. Each flush compacts it again, so a large one takes CPU from every
    phase: earlier runs slow later ones.
    """
    tables = list((state_dir / "cassandra" / "data" / "data" / "system").glob("paxos-*"))
    if not tables:
        return None
    size = sum(f.stat().st_size for t in tables for f in t.rglob("*") if f.is_file())
    return round(size / 2**20, 1)


def thread_nice(pid: int) -> list[int] | None:
    """The distinct nice values of ``pid``'s threads, lowest first (None once it is gone).

    ``dev/services.sh`` starts the local Kafka and Cassandra at nice 19 (round 17; 5 in round 16,
    0 before), and how they share the two cores with the consumer moves the latency figures more
    than most changes to the consumer do, so each run records it. Every thread is read, since a
    JVM's threads can be reniced one by one.
    """
    values: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        # Fields after the command name (which may hold spaces and parentheses): the nice value
        # is field 19 of proc(5), the 17th after ``comm``.
        values.add(int(stat.rsplit(")", 1)[1].split()[16]))
    return sorted(values) or None


def git_revision(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def facts(store: Store, root: Path, pids: dict[str, int]) -> dict[str, Any]:
    rows = await store.execute(
        "SELECT release_version FROM system.local", idempotent=True, kind="probe"
    )
    mem_kib = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    return {
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:\s*(.*)$"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kib) / 1024 / 1024, 1) if mem_kib else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _package(name) for name in PACKAGES},
        "cassandra": rows[0].release_version if rows else None,
        "store_is_scylla": store.is_scylla,
        "kafka": kafka_version(root / ".local"),
        "cassandra_paxos_state_mib_at_start": paxos_state_mib(root / ".local"),
        "nice": {name: thread_nice(pid) for name, pid in sorted(pids.items())},
        "git": git_revision(root),
    }
