"""What the receiver knows about its own health, for a readiness probe to read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReceiverHealth:
    """Updated by the receiver as it runs; read by whoever serves ``/readyz``.

    ``kafka_ok`` is the outcome of the latest publish (true once Kafka acked, false after a
    failure); ``pending_update_count`` is Telegram's backlog per bot id, as last reported by
    ``getWebhookInfo`` (webhook bots only).
    """

    kafka_ok: bool = False
    pending_update_count: dict[int, int] = field(default_factory=dict)

    def ready(self, pending_limit: int = 0) -> bool:
        """Kafka acknowledges and no bot's backlog is above ``pending_limit`` (0: no limit)."""
        if not self.kafka_ok:
            return False
        return pending_limit <= 0 or all(
            n <= pending_limit for n in self.pending_update_count.values()
        )
