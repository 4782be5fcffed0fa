"""The migration files: numbered without gaps, rendered differently for ScyllaDB and Cassandra."""

from __future__ import annotations

from config.settings import StoreSettings
from schema.migrate import keyspace_cql, load_migrations


def test_versions_run_from_one_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_scylla_gets_repair_tombstone_gc_and_cassandra_does_not() -> None:
    first = load_migrations()[0]
    scylla = " ".join(first.statements("ks", scylla=True))
    cassandra = " ".join(first.statements("ks", scylla=False))
    assert "tombstone_gc = {'mode': 'repair'}" in scylla
    assert "tombstone_gc" not in cassandra
    assert "{keyspace}" not in cassandra and "ks.messages" in cassandra


def test_keyspace_uses_network_topology_and_disables_tablets_only_on_scylla() -> None:
    s = StoreSettings(replication={"eu": 3, "us": 3}, local_dc="eu")
    assert "'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 3" in keyspace_cql(s, False)
    assert "tablets" not in keyspace_cql(s, False)
    assert "tablets = {'enabled': false}" in keyspace_cql(s, True)
