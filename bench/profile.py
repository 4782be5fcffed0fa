"""Sampling the consumer process with py-spy, and summarising where its CPU time goes.

py-spy attaches to the running ``tgbridge consumer`` from outside (no change to the code under
test), samples every thread while it works, and writes collapsed stacks; idle samples (a thread
waiting in ``epoll``) are left out, so the shares below are shares of the CPU the process used.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")

#: Leaf functions of a thread that is waiting, not working (py-spy counts some lock waits).
IDLE_LEAVES = frozenset({
    "wait (threading.py)", "_worker (thread.py)", "select (selectors.py)",
})

#: Leaf frames are charged to the first area whose marker their file path contains.
AREAS = (
    ("cassandra driver", "/cassandra/"),
    ("aiokafka", "/aiokafka/"),
    ("kafka (python)", "/kafka/"),
    ("prometheus_client", "/prometheus_client/"),
    ("tenacity", "/tenacity/"),
    ("aiohttp", "/aiohttp/"),
    ("logging", "/logging/"),
    ("asyncio", "/asyncio/"),
    ("namedtuple (driver rows)", "/collections/__init__.py"),
    ("threading", "/threading.py"),
    ("selectors/socket", "/selectors.py"),
    ("tgbridge: decode", "consumers/decode.py"),
    ("tgbridge: loop", "consumers/loop.py"),
    ("tgbridge: writer", "consumers/writer.py"),
    ("tgbridge: keys", "consumers/keys.py"),
    ("tgbridge: store", "schema/store.py"),
    ("tgbridge: lean requests", "schema/lean.py"),
    ("tgbridge: reactor (connections on the loop)", "schema/reactor.py"),
    ("tgbridge: fetching", "consumers/fetching.py"),
    ("tgbridge: tables", "schema/tables.py"),
    ("tgbridge: breaker", "schema/breaker.py"),
    ("tgbridge: metrics", "worker/metrics.py"),
    ("tgbridge: other", "/work/"),
)


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


class Sampler:
    """``py-spy record`` attached to ``pid`` until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        self.pid = pid
        self.output = output
        self.rate = rate
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            py_spy(), "record", "--pid", str(self.pid), "--rate", str(self.rate),
            "--format", "raw", "--threads", "--output", str(self.output),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        # py-spy writes its output when interrupted (or when the target exits).
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m["func"], m["file"]


def _area(path: str, func: str) -> str:
    if path == "<string>":
        # The __init__ of dataclasses and namedtuples is generated code with no file of its own.
        return "generated constructors (dataclasses, namedtuples)"
    if not path:
        return f"native/other ({func})" if func else "native/other"
    path = "/" + path.lstrip("/")
    for name, marker in AREAS:
        if marker in path:
            return name
    return "other python"


def summarise(collapsed: Path, top: int = 20) -> dict[str, Any]:
    """Shares of samples by thread, by area of the leaf frame, by leaf function, and inclusive
    time of tgbridge's own functions."""
    leaves: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        frames = [f for f in frames if not f.startswith(("thread", "process"))]
        if not frames:
            continue
        func, path = _parse(frames[-1])
        if f"{func.rsplit('.', 1)[-1]} ({path.rsplit('/', 1)[-1]})" in IDLE_LEAVES:
            idle += count
            continue
        total += count
        threads[thread] += count
        leaves[f"{func} ({_short(path)})"] += count
        areas[_area(path, func)] += count
        seen = set()
        for f in frames:
            fn, p = _parse(f)
            if any(part in p for part in ("consumers/", "schema/", "worker/")):
                key = f"{fn} ({_short(p)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count

    def shares(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(v / total, 4)) for k, v in c.most_common(n)] if total else []

    return {
        "samples": total,
        "idle_samples_left_out": idle,
        "by_thread": shares(threads, 10),
        "by_area": shares(areas, 30),
        "leaf_functions": shares(leaves, top),
        "tgbridge_inclusive": shares(inclusive, top),
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
