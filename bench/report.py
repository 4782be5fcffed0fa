"""The outcome of a run: the figures against the issue's targets, as a table and a JSON file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB_PER_MIB = 1.048576

TARGET_RATIO = 0.85
TARGET_REPLAY = 3.0
TARGET_P99_MS = 50.0
TARGET_PEAK_MB = 200.0


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    target: str = ""
    met: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "value": self.value, "target": self.target, "met": self.met}


def _latency_cell(lat: dict[str, Any] | None) -> str:
    if not lat or not lat.get("count"):
        return "not measured" + (f" ({lat['reason']})" if lat and lat.get("reason") else "")
    return (
        f"p50 {lat['p50_ms']:.1f} / p99 {lat['p99_ms']:.1f} / max {lat['max_ms']:.1f} ms "
        f"(n={lat['count']}, {lat['achieved_rate']:.0f} msg/s)"
    )


def _pace_note(pace: dict[str, Any] | None) -> str:
    if not pace:
        return ""
    return f"; sent late (> 5 ms): {pace['late_records']}, worst {pace['max_lag_ms']:.0f} ms"


def _beside_ingests(ceiling: dict[str, Any] | None) -> float | None:
    """The best of the ceiling's re-runs at its chosen level, one after each ingest; None for
    runs with fewer re-runs than two (one ingest, or results from before round 9)."""
    again = (ceiling or {}).get("again_runs") or []
    if len(again) < 2:
        return None
    return float(max(r["messages_per_s"] for r in again))


def rows(figures: dict[str, Any]) -> list[Row]:
    """The table of a run's figures, each with its target when the issue sets one."""
    out: list[Row] = []
    ingest = figures.get("ingest")
    ceiling = figures.get("ceiling")
    replay = figures.get("replay")
    if ingest:
        runs = ingest.get("runs_msg_per_s") or []
        best_of = f" (best of {', '.join(f'{r:.0f}' for r in runs)})" if len(runs) > 1 else ""
        out.append(Row("Ingest (empty keyspace)", f"{ingest['messages_per_s']:.0f} msg/s{best_of}"))
    beside = _beside_ingests(ceiling)
    if ceiling:
        best = ceiling["best"]
        value = f"{best['messages_per_s']:.0f} msg/s at concurrency {best['concurrency']}"
        if beside is not None:
            runs = ", ".join(f"{r['messages_per_s']:.0f}" for r in ceiling["again_runs"])
            value += f"; beside the ingests: {beside:.0f} (best of {runs})"
        out.append(Row("Ceiling (same statements, direct)", value))
    if ingest and ceiling:
        every = ingest["messages_per_s"] / ceiling["best"]["messages_per_s"]
        runs = ingest.get("runs_msg_per_s") or []
        if beside is not None:
            # Since round 9: the best ingest against the best of as many ceiling runs at the
            # chosen level, each right after an ingest. The best of every ceiling run (the
            # levels' own included) is printed beside it, as it was the figure before.
            ratio = ingest["messages_per_s"] / beside
            value = f"{ratio:.3f} (against the best of every ceiling run: {every:.3f})"
        else:
            ratio = every
            value = f"{ratio:.3f}"
            if len(runs) > 1:
                # What one ingest alone would have given (the runner's rule before round 4).
                alone = runs[0] / ceiling["best"]["messages_per_s"]
                value += f" (first ingest alone: {alone:.3f})"
        out.append(Row("Ingest / ceiling", value, f">= {TARGET_RATIO}", ratio >= TARGET_RATIO))
    if replay:
        out.append(Row("Replay (all duplicates)", f"{replay['messages_per_s']:.0f} msg/s"))
        if ingest:
            ratio = replay["messages_per_s"] / ingest["messages_per_s"]
            met = ratio >= TARGET_REPLAY
            out.append(Row("Replay / ingest", f"{ratio:.2f}x", f">= {TARGET_REPLAY:g}x", met))
    if "kafka_latency" in figures:
        lat = figures["kafka_latency"]
        met = lat["p99_ms"] <= TARGET_P99_MS if lat.get("count") else None
        target = f"p99 <= {TARGET_P99_MS:g} ms"
        out.append(Row("Kafka record -> row", _latency_cell(lat), target, met))
        warm = lat.get("warm_up")
        if warm and warm.get("count"):
            out.append(Row(
                f"  (first {lat['warm_up_s']:g} s after the consumer started, apart)",
                f"p50 {warm['p50_ms']:.1f} / p99 {warm['p99_ms']:.1f} / "
                f"max {warm['max_ms']:.1f} ms (n={warm['count']})",
            ))
        ack = lat.get("record_to_kafka_ack")
        if ack and ack.get("count"):
            # The producing half: the runner's producer, its linger, Kafka's append and answer.
            out.append(Row(
                "  (record -> Kafka acknowledged it, to the runner)",
                f"p50 {ack['p50_ms']:.1f} / p99 {ack['p99_ms']:.1f} / max {ack['max_ms']:.1f} ms"
                + _pace_note(lat.get("pace")),
            ))
        delay = lat.get("kafka_delay_histogram")
        if delay and delay.get("observations"):
            # Before the consumer starts on a record: publishing, the broker, fetching, its loop.
            out.append(Row(
                "  (record -> consumer starts on it, whole phase)",
                f"p50 in {delay['p50_bucket']} / p99 in {delay['p99_bucket']}, "
                f"{delay['share_within_50ms']:.1%} within 50 ms",
            ))
        cpu = lat.get("cpu_cores")
        if cpu:
            # The tail follows how busy the two cores were, and how much the host took back.
            out.append(Row(
                "  (CPU cores busy meanwhile)",
                ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "other"),
            ))
    if "webhook_latency" in figures:
        out.append(Row("Webhook request -> row", _latency_cell(figures["webhook_latency"])))
    if ingest:
        peak_mb = ingest["peak_rss_mib"] * MB_PER_MIB
        out.append(Row(
            "Consumer peak RSS (ingest)",
            f"{peak_mb:.0f} MB ({ingest['peak_rss_mib']:.0f} MiB)",
            f"<= {TARGET_PEAK_MB:g} MB",
            peak_mb <= TARGET_PEAK_MB,
        ))
    soak = figures.get("soak")
    if soak:
        out.append(Row(
            f"Soak RSS slope ({soak['minutes']:g} min at {soak['achieved_rate']:.0f} msg/s"
            + (f", after a backlog of {b:,}" if (b := soak.get("backlog_records")) else "")
            + ")",
            f"{soak['slope_mib_per_hour_second_half']:+.2f} MiB/h "
            f"({soak['rss_start_mib']:.0f} -> {soak['rss_end_mib']:.0f} MiB)",
            "flat",
            soak["flat"],
        ))
    elif "soak_skipped" in figures:
        out.append(Row("Soak", f"skipped ({figures['soak_skipped']})", "flat", None))
    return out


def table(table_rows: list[Row]) -> str:
    header = ("Figure", "Value", "Target", "Met")
    cells = [header] + [
        (r.figure, r.value, r.target, "" if r.met is None else ("yes" if r.met else "NO"))
        for r in table_rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write(results_dir: Path, name: str, document: dict[str, Any]) -> Path:
    """Write ``document`` as ``results_dir/name.json`` (via a temporary file, so never half)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path
