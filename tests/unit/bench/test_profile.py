"""The profile's summary: where py-spy's samples of the consumer are charged."""

from __future__ import annotations

from pathlib import Path

from bench.profile import summarise

SITE = "/work/main/.venv/lib/python3.11/site-packages"


def _stack(*frames: str) -> str:
    return ";".join(("thread (1): MainThread", *frames))


def test_areas_name_the_consumers_own_modules_and_leave_idle_threads_out(tmp_path: Path) -> None:
    run = "run (/work/main/consumers/loop.py:10)"
    collapsed = tmp_path / "ingest.collapsed"
    collapsed.write_text("\n".join([
        f"{_stack(run, '_send (/work/main/schema/lean.py:200)')} 40",
        f"{_stack(run, 'data_received (/work/main/schema/reactor.py:90)')} 30",
        f"{_stack(run, 'gather (/work/main/consumers/fetching.py:50)')} 10",
        f"{_stack(run, '__init__ (<string>:2)')} 10",
        f"{_stack(run, f'_unpack_records ({SITE}/aiokafka/consumer/fetcher.py:9)')} 10",
        # a pool thread waiting for work is idle, not CPU
        f"{_stack('_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81)')} 500",
    ]) + "\n")

    summary = summarise(collapsed)

    assert summary["samples"] == 100
    assert summary["idle_samples_left_out"] == 500
    assert dict(summary["by_area"]) == {
        "tgbridge: lean requests": 0.4,
        "tgbridge: reactor (connections on the loop)": 0.3,
        "tgbridge: fetching": 0.1,
        "generated constructors (dataclasses, namedtuples)": 0.1,
        "aiokafka": 0.1,
    }
    assert dict(summary["tgbridge_inclusive"])["run (consumers/loop.py)"] == 1.0
