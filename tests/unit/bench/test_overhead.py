"""``python -m bench.overhead`` measures the consumer loop over every record it is given."""

from __future__ import annotations

from bench.overhead import measure


async def test_the_overhead_benchmark_runs_the_loop_over_all_its_traffic() -> None:
    figures = await measure(records=1_000, repeat=1)
    best = figures["best"]
    # The loop refuses to report a figure unless it stored every record (bench/overhead.py).
    assert figures["records"] == 1_000
    assert best["loop_us"] > best["lanes_us"] > 0
    assert best["decode_us"] > 0
    assert best["added_us"] == round(best["loop_us"] - best["lanes_us"], 2)
