"""Which messages need their key claimed, and why skipping the claim is safe for the others."""

from __future__ import annotations

from typing import Any

import orjson

from consumers.decode import decode_update
from consumers.keys import (
    MAX_PROBES,
    claim_probes,
    default_channel_id,
    message_key,
    needs_claim,
    owner_for,
    space_offset,
)
from consumers.model import DecodedMessage, MessageIdentity, Scope
from schema.tables import ChannelBinding
from worker.demo.traffic import private, supergroup

SUPERGROUP = -1_003_000_000_042
OLD_BASIC_GROUP = -4_000_042
USER = 10_042
SENT = 1_767_225_600


def unowned(chat_id: int, thread_id: int = 0) -> ChannelBinding:
    """A binding made before owners were recorded (or by a migration)."""
    return ChannelBinding(default_channel_id(chat_id, thread_id))


def owned_by(chat_id: int, scope: str, thread_id: int = 0) -> ChannelBinding:
    return ChannelBinding(default_channel_id(chat_id, thread_id), chat_id, scope)


def test_a_supergroup_message_in_its_own_channel_or_topic_is_not_claimed() -> None:
    ident = MessageIdentity(SUPERGROUP, Scope.CHAT, 7)
    assert not needs_claim(ident, unowned(SUPERGROUP), 0)
    assert not needs_claim(ident, unowned(SUPERGROUP, 12), 12)
    assert not needs_claim(ident, owned_by(SUPERGROUP, Scope.CHAT), 0)


def test_a_migrated_supergroup_in_its_old_groups_channel_is_claimed() -> None:
    # The old basic group's messages (numbered per bot) live in that channel too.
    ident = MessageIdentity(SUPERGROUP, Scope.CHAT, 7)
    assert needs_claim(ident, unowned(OLD_BASIC_GROUP), 0)
    old_groups = owned_by(OLD_BASIC_GROUP, Scope.bot(42))  # the binding a migration copies
    assert needs_claim(ident, old_groups, 0)


def test_in_a_channel_without_an_owner_spaces_numbered_per_bot_or_connection_claim() -> None:
    for scope in (Scope.bot(42), Scope.business("conn-1")):
        ident = MessageIdentity(OLD_BASIC_GROUP, scope, 7)
        assert needs_claim(ident, unowned(OLD_BASIC_GROUP), 0)


def test_the_owning_space_does_not_claim_and_every_other_space_does() -> None:
    channel = owned_by(USER, Scope.bot(42))
    assert not needs_claim(MessageIdentity(USER, Scope.bot(42), 7), channel, 0)
    assert needs_claim(MessageIdentity(USER, Scope.bot(43), 7), channel, 0)
    assert needs_claim(MessageIdentity(USER, Scope.business("conn-1"), 7), channel, 0)
    group = owned_by(OLD_BASIC_GROUP, Scope.bot(42))
    assert needs_claim(MessageIdentity(OLD_BASIC_GROUP, Scope.bot(43), 7), group, 0)


def _message(chat: dict[str, Any], bot_id: int, thread_id: int = 0) -> DecodedMessage:
    msg: dict[str, Any] = {"message_id": 7, "date": SENT, "chat": chat, "text": "hi"}
    if thread_id:
        msg["message_thread_id"], msg["is_topic_message"] = thread_id, True
    m = decode_update(orjson.dumps({"update_id": 1, "message": msg}), bot_id)
    assert isinstance(m, DecodedMessage)
    return m


def test_a_message_binding_its_own_chat_makes_its_space_the_owner() -> None:
    m = _message(private(USER), 42)
    assert owner_for(m, USER) == ChannelBinding(USER, USER, Scope.bot(42))
    topic = _message(supergroup(SUPERGROUP, forum=True), 42, thread_id=5)
    own_topic = default_channel_id(SUPERGROUP, 5)
    assert topic.thread_id == 5
    assert owner_for(topic, own_topic) == ChannelBinding(own_topic, SUPERGROUP, Scope.CHAT)
    # Bound to another chat's channel (as a migrated group is), it owns nothing.
    assert owner_for(m, OLD_BASIC_GROUP) == ChannelBinding(OLD_BASIC_GROUP)


def _other_space_sharing_the_owners_offset(owner: MessageIdentity) -> MessageIdentity:
    taken = space_offset(owner.chat_id, owner.scope)
    for bot in range(1, 100_000):
        ident = MessageIdentity(owner.chat_id, Scope.bot(bot), owner.telegram_message_id)
        if ident.scope != owner.scope and space_offset(ident.chat_id, ident.scope) == taken:
            return ident
    raise AssertionError("no bot found whose offset is the owner's")


def test_claimed_keys_keep_off_the_owners_offset_so_they_never_meet_its_keys() -> None:
    owner = MessageIdentity(USER, Scope.bot(42), 7)
    channel = owned_by(USER, owner.scope)
    other = _other_space_sharing_the_owners_offset(owner)
    # Same second, same id, same offset: without the rule, the first candidate is the owner's key.
    assert message_key(other, SENT, 0) == message_key(owner, SENT)
    probes = list(claim_probes(other, channel))
    assert probes[0] == 1 and len(probes) == MAX_PROBES - 1
    assert message_key(owner, SENT) not in {message_key(other, SENT, p) for p in probes}
    # A space whose offset differs keeps all its probes but the one that lands on the owner's.
    third = MessageIdentity(USER, Scope.bot(43), 7)
    landing = (space_offset(USER, owner.scope) - space_offset(USER, third.scope)) % 1000
    expected = [p for p in range(MAX_PROBES) if p != landing]
    assert list(claim_probes(third, channel)) == expected
    # Without an owner every probe is open.
    assert list(claim_probes(other, unowned(USER))) == list(range(MAX_PROBES))


def test_one_chats_messages_of_one_second_never_share_a_key() -> None:
    # What makes the unclaimed case safe: within one numbering space and one second, keys
    # differ as long as ids do not differ by a multiple of 2**22.
    keys = {message_key(MessageIdentity(SUPERGROUP, Scope.CHAT, i), SENT) for i in range(50_000)}
    assert len(keys) == 50_000
    far = MessageIdentity(SUPERGROUP, Scope.CHAT, 7 + 2**22)
    assert message_key(far, SENT) == message_key(MessageIdentity(SUPERGROUP, Scope.CHAT, 7), SENT)
