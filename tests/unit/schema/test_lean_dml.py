"""Which statements may take the short request path: reads and writes of rows, nothing else."""

from __future__ import annotations

import pytest

from schema.lean import is_dml


@pytest.mark.parametrize(
    "cql",
    [
        "SELECT v FROM ks.t WHERE k = ?",
        "  insert INTO ks.t (k) VALUES (?) IF NOT EXISTS",
        "UPDATE ks.t USING TIMESTAMP ? SET v = ? WHERE k = ?",
        "\nDELETE FROM ks.t WHERE k = ?",
    ],
)
def test_reads_and_writes_may(cql: str) -> None:
    assert is_dml(cql)


@pytest.mark.parametrize(
    "cql",
    [
        "CREATE TABLE ks.t (k int PRIMARY KEY)",
        "ALTER TABLE ks.t ADD v text",
        "DROP KEYSPACE IF EXISTS ks",
        "TRUNCATE ks.t",
        "BEGIN BATCH INSERT INTO ks.t (k) VALUES (1) APPLY BATCH",
        "USE ks",
        "",
        "   ",
    ],
)
def test_schema_changes_and_the_rest_may_not(cql: str) -> None:
    assert not is_dml(cql)
