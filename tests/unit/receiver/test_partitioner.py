"""The memoised partitioner sends every key where Kafka's default (Java-compatible) one would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from worker.receiver.publisher import ChatPartitioner


@given(keys=st.lists(st.binary(max_size=24), max_size=50), partitions=st.integers(1, 64))
def test_same_partition_as_kafkas_default(keys: list[bytes], partitions: int) -> None:
    ours = ChatPartitioner(max_keys=8)
    default = DefaultPartitioner()
    all_partitions = list(range(partitions))
    for key in keys + keys:
        assert ours(key, all_partitions, all_partitions) == default(
            key, all_partitions, all_partitions
        )


def test_keyless_records_go_to_an_available_partition() -> None:
    assert ChatPartitioner()(None, [0, 1, 2], [2]) == 2
