"""Which messages need their key claimed, and why skipping the claim is safe for the others."""

from __future__ import annotations

from consumers.keys import default_channel_id, message_key, needs_claim
from consumers.model import MessageIdentity, Scope

SUPERGROUP = -1_003_000_000_042
OLD_BASIC_GROUP = -4_000_042
SENT = 1_767_225_600


def test_a_supergroup_message_in_its_own_channel_or_topic_is_not_claimed() -> None:
    ident = MessageIdentity(SUPERGROUP, Scope.CHAT, 7)
    assert not needs_claim(ident, default_channel_id(SUPERGROUP, 0), 0)
    assert not needs_claim(ident, default_channel_id(SUPERGROUP, 12), 12)


def test_a_migrated_supergroup_in_its_old_groups_channel_is_claimed() -> None:
    # The old basic group's messages (numbered per bot) live in that channel too.
    ident = MessageIdentity(SUPERGROUP, Scope.CHAT, 7)
    assert needs_claim(ident, default_channel_id(OLD_BASIC_GROUP, 0), 0)


def test_messages_numbered_per_bot_or_business_connection_are_claimed() -> None:
    for scope in (Scope.bot(42), Scope.business("conn-1")):
        ident = MessageIdentity(OLD_BASIC_GROUP, scope, 7)
        assert needs_claim(ident, default_channel_id(OLD_BASIC_GROUP, 0), 0)


def test_one_chats_messages_of_one_second_never_share_a_key() -> None:
    # What makes the unclaimed case safe: within one numbering space and one second, keys
    # differ as long as ids do not differ by a multiple of 2**22.
    keys = {message_key(MessageIdentity(SUPERGROUP, Scope.CHAT, i), SENT) for i in range(50_000)}
    assert len(keys) == 50_000
    far = MessageIdentity(SUPERGROUP, Scope.CHAT, 7 + 2**22)
    assert message_key(far, SENT) == message_key(MessageIdentity(SUPERGROUP, Scope.CHAT, 7), SENT)
