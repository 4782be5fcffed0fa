"""Where the short request path sends a statement: what the token-aware plan would put first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.policies import HostDistance

from schema.lean import LeanPath


class Host:
    def __init__(self, name: str, distance: int, up: bool = True) -> None:
        self.name, self.distance, self.is_up = name, distance, up

    def __repr__(self) -> str:
        return self.name


def lean(replicas: list[Host], pools: dict[Host, Any] | None = None) -> LeanPath:
    token_map = SimpleNamespace(
        token_class=SimpleNamespace(from_key=lambda key: ("token", key)),
        get_replicas=lambda ks, token: list(replicas),
    )
    policy = SimpleNamespace(
        make_query_plan=lambda ks, q: iter(()), distance=lambda h: h.distance
    )
    session = SimpleNamespace(
        keyspace=None,
        default_fetch_size=5000,
        use_client_timestamp=False,
        _pools=pools
        if pools is not None
        else {h: SimpleNamespace(is_shutdown=False, host=h) for h in replicas},
        cluster=SimpleNamespace(
            metadata=SimpleNamespace(token_map=token_map),
            profile_manager=SimpleNamespace(default=SimpleNamespace(load_balancing_policy=policy)),
        ),
    )
    loop: Any = SimpleNamespace()  # routing never touches the loop
    return LeanPath(session, loop, 1.0, lambda c, r: r, lambda b: None)  # type: ignore[arg-type]


def bound(lwt: bool = False, key: bytes | None = b"k") -> Any:
    return SimpleNamespace(
        routing_key=key,
        keyspace="ks",
        is_lwt=lambda: lwt,
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
    )


def chosen(path: LeanPath, b: Any) -> Any:
    pool = path.replica_pool(b)
    return None if pool is None else pool.host


def test_a_local_replica_is_chosen_over_a_remote_one() -> None:
    remote, local = Host("remote", HostDistance.REMOTE), Host("local", HostDistance.LOCAL)
    path = lean([remote, local])
    assert {chosen(path, bound()) for _ in range(10)} == {local}


def test_the_local_rack_comes_first() -> None:
    local, rack = Host("local", HostDistance.LOCAL), Host("rack", HostDistance.LOCAL_RACK)
    path = lean([local, rack])
    assert {chosen(path, bound()) for _ in range(10)} == {rack}


def test_replicas_take_turns_but_a_lightweight_transaction_keeps_the_first() -> None:
    a, b, c = (Host(n, HostDistance.LOCAL) for n in "abc")
    path = lean([a, b, c])
    assert {chosen(path, bound()) for _ in range(9)} == {a, b, c}
    assert {chosen(path, bound(lwt=True)) for _ in range(9)} == {a}


def test_a_down_replica_is_skipped() -> None:
    down, up = Host("down", HostDistance.LOCAL, up=False), Host("up", HostDistance.LOCAL)
    path = lean([down, up])
    assert {chosen(path, bound(lwt=True)) for _ in range(5)} == {up}


@pytest.mark.parametrize(
    "replicas, has_pool, key",
    [
        ([Host("remote", HostDistance.REMOTE)], True, b"k"),  # no local replica
        ([Host("down", HostDistance.LOCAL, up=False)], True, b"k"),  # none alive
        ([Host("local", HostDistance.LOCAL)], False, b"k"),  # no pool for it
        ([Host("local", HostDistance.LOCAL)], True, None),  # no routing key
        ([], True, b"k"),  # no replicas known
    ],
)
def test_otherwise_the_policys_full_plan_decides(
    replicas: list[Host], has_pool: bool, key: bytes | None
) -> None:
    path = lean(replicas, None if has_pool else {})
    assert path.replica_pool(bound(key=key)) is None
