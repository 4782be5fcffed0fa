"""The benchmark's table: how the ratio ingest ÷ ceiling is read from a run's figures."""

from __future__ import annotations

from typing import Any

from bench.report import rows


def _run(level_rates: list[float], again_rates: list[float]) -> dict[str, Any]:
    levels = [{"concurrency": 16 * 2**i, "messages_per_s": r} for i, r in enumerate(level_rates)]
    again = [{"concurrency": 64, "messages_per_s": r} for r in again_rates]
    best = max(levels + again, key=lambda r: r["messages_per_s"])
    ceiling: dict[str, Any] = {"levels": levels, "best": best}
    if again:
        ceiling["again"] = again[0]
        ceiling["again_runs"] = again
    return {
        "ingest": {"messages_per_s": 900.0, "runs_msg_per_s": [850.0, 900.0], "peak_rss_mib": 90},
        "ceiling": ceiling,
    }


def _ratio_row(figures: dict[str, Any]) -> Any:
    return next(r for r in rows(figures) if r.figure == "Ingest / ceiling")


def test_the_ratio_holds_the_best_ingest_against_the_ceilings_runs_beside_the_ingests() -> None:
    # A lucky level run (1,400) chose the level; its two runs beside the ingests gave 1,000, 1,050.
    row = _ratio_row(_run([1_100, 1_400, 1_200, 1_300], [1_000, 1_050]))
    assert row.value.startswith("0.857 ")
    assert "best of every ceiling run: 0.643" in row.value
    assert row.met is True
    table = rows(_run([1_100, 1_400], [1_000, 1_050]))
    ceiling_row = next(r for r in table if "Ceiling" in r.figure)
    assert "beside the ingests: 1050 (best of 1000, 1050)" in ceiling_row.value


def test_a_run_with_one_rerun_or_none_keeps_the_best_of_every_ceiling_run() -> None:
    one = _ratio_row(_run([1_100, 1_400], [1_050]))
    assert one.value.startswith("0.643 (first ingest alone: 0.607)")
    assert one.met is False
    before_round_9 = _run([1_000, 1_200], [])
    before_round_9["ceiling"]["again"] = {"concurrency": 32, "messages_per_s": 1_000.0}
    assert _ratio_row(before_round_9).value.startswith("0.750")


def test_the_latency_rows_split_off_kafkas_acknowledgement_and_say_how_even_the_pace_was() -> None:
    latency = {
        "count": 1_000, "p50_ms": 20.0, "p99_ms": 60.0, "max_ms": 90.0, "achieved_rate": 2_300.0,
        "record_to_kafka_ack": {"count": 1_000, "p50_ms": 5.2, "p99_ms": 23.6, "max_ms": 43.7},
        "pace": {"max_lag_ms": 11.0, "late_records": 164},
    }
    table = {r.figure.strip(): r for r in rows({"kafka_latency": latency})}
    assert table["Kafka record -> row"].met is False
    ack = table["(record -> Kafka acknowledged it, to the runner)"]
    assert ack.value == "p50 5.2 / p99 23.6 / max 43.7 ms; sent late (> 5 ms): 164, worst 11 ms"
