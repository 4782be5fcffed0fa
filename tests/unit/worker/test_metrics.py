"""The consumer's lock-free metrics expose exactly what prometheus_client's own types would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from worker.metrics import LoopCounter, LoopHistogram, Metrics

BUCKETS = (0.001, 0.005, 0.05, 1, 60)
#: Values below, on and between the bounds, and above the last one (+Inf).
VALUES = (0.0, 0.0004, 0.001, 0.0011, 0.005, 0.02, 0.05, 0.9, 1.0, 59.0, 60.0, 61.0, 1e9)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but prometheus_client's ``_created`` timestamps, which carry no counts."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_loop_histogram_matches_prometheus_client_bucket_for_bucket() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h_seconds", "doc", ["kind"], buckets=BUCKETS, registry=theirs)
    fast = LoopHistogram("h_seconds", "doc", ["kind"], buckets=BUCKETS, registry=ours)
    for i, value in enumerate(VALUES):
        kind = "read" if i % 3 else "write"
        reference.labels(kind).observe(value)
        fast.labels(kind).observe(value)
    assert _samples(ours) == _samples(theirs)
    text = generate_latest(ours).decode()
    assert 'h_seconds_bucket{kind="read",le="0.005"}' in text
    assert "# TYPE h_seconds histogram" in text


def test_an_unlabelled_loop_histogram_and_counter_match_too() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference_h = Histogram("d_seconds", "doc", buckets=BUCKETS, registry=theirs)
    reference_c = Counter("n_total", "doc", registry=theirs)
    fast_h = LoopHistogram("d_seconds", "doc", buckets=BUCKETS, registry=ours)
    fast_c = LoopCounter("n_total", "doc", registry=ours)
    assert _samples(ours) == _samples(theirs)  # zeros before anything happened
    for value in VALUES:
        reference_h.observe(value)
        fast_h.observe(value)
    reference_c.inc()
    reference_c.inc(41)
    fast_c.inc()
    fast_c.inc(41)
    assert _samples(ours) == _samples(theirs)
    assert "n_total 42.0" in generate_latest(ours).decode()


def test_loop_metrics_refuse_what_prometheus_client_refuses() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("c_total", "doc", registry=registry)
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(-1)
    histogram = LoopHistogram("l_seconds", "doc", ["kind"], buckets=BUCKETS, registry=registry)
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels("a", "b")
    with pytest.raises(ValueError, match="ascending"):
        LoopHistogram("u_seconds", "doc", buckets=(1, 0.5), registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("c_total", "doc", registry=registry)


def test_the_consumer_metrics_keep_their_names_on_the_page() -> None:
    metrics = Metrics()
    metrics.records_consumed.inc(3)
    metrics.store_latency.labels("read_mapping").observe(0.004)
    metrics.e2e_from_kafka.observe(0.03)
    text = generate_latest(metrics.registry).decode()
    assert "tgbridge_records_consumed_total 3.0" in text
    assert 'tgbridge_store_request_seconds_bucket{kind="read_mapping",le="0.005"} 1.0' in text
    assert 'tgbridge_e2e_from_kafka_seconds_bucket{le="0.025"} 0.0' in text
    assert 'tgbridge_e2e_from_kafka_seconds_bucket{le="0.05"} 1.0' in text
    assert "tgbridge_e2e_from_kafka_seconds_count 1.0" in text
