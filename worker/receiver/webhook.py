"""The webhook endpoint: one aiohttp server for every webhook bot, answering 200 only after Kafka.

Telegram retries any update not answered with a 2xx, so the answer waits for Kafka's
acknowledgement and becomes 503 when that does not come in time. A stranger gets nothing in:
each bot has its own secret, compared in constant time, and every refusal is counted with its
reason. aiogram's SimpleRequestHandler is not used: it answers before handling and accepts every
request when no secret is set.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter

from config import BotSettings, TelegramSettings
from worker.metrics import Metrics
from worker.receiver.bots import ReceiverConfigError
from worker.receiver.health import ReceiverHealth
from worker.receiver.keys import build_record
from worker.receiver.publisher import Publisher, PublishError
from worker.receiver.rawjson import InvalidUpdate, parse_update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: The ranges Telegram documents as the sources of webhook requests.
TELEGRAM_NETWORKS = (
    ipaddress.ip_network("149.154.160.0/20"),
    ipaddress.ip_network("91.108.4.0/22"),
)


def from_telegram(remote: str | None) -> bool:
    """Whether a peer address lies in Telegram's published ranges (IPv4-mapped IPv6 too)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in TELEGRAM_NETWORKS)


@dataclass(slots=True)
class _Endpoint:
    bot_id: int
    secret: bytes
    received: Counter
    published: Counter


class WebhookServer:
    """Serves ``telegram.webhook_path`` for the given bots, publishing each update to Kafka."""

    transport = "webhook"

    def __init__(
        self,
        bots: list[BotSettings],
        telegram: TelegramSettings,
        publisher: Publisher,
        metrics: Metrics,
        health: ReceiverHealth,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        self._telegram = telegram
        self._publisher = publisher
        self._metrics = metrics
        self._health = health
        self._shutdown_timeout = shutdown_timeout_s
        self._endpoints: dict[str, _Endpoint] = {}
        for bot in bots:
            if bot.webhook_secret is None:
                raise ReceiverConfigError(
                    f"bot {bot.bot_id} is in webhook mode but has no webhook_secret: give it one "
                    "in TGBRIDGE_TELEGRAM__BOTS so strangers cannot post updates"
                )
            label = str(bot.bot_id)
            self._endpoints[label] = _Endpoint(
                bot.bot_id,
                bot.webhook_secret.get_secret_value().encode(),
                metrics.updates_received.labels(label, self.transport),
                metrics.updates_published.labels(label, self.transport),
            )
        self._latency = metrics.publish_latency.labels(self.transport)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._telegram.max_body_bytes)
        # The path template's {bot_id} is also aiohttp's syntax for a variable segment.
        app.router.add_post(self._telegram.webhook_path, self.handle)
        return app

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Listen on the configured host and port (port 0 picks a free one, see ``port``)."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(
            runner,
            host or self._telegram.webhook_host,
            self._telegram.webhook_port if port is None else port,
            backlog=1024,
        )
        await site.start()
        self.port = runner.addresses[0][1]
        log.info(
            "webhook server on %s:%s for bots %s",
            host or self._telegram.webhook_host,
            self.port,
            ", ".join(self._endpoints),
        )

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (their publishes too), then close."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        received_at = time.time()
        key = request.match_info["bot_id"]
        endpoint = self._endpoints.get(key)
        label = key if endpoint is not None else "unknown"
        if self._telegram.restrict_to_telegram_ips and not from_telegram(request.remote):
            return self._refuse(label, "forbidden_ip", 403, "forbidden")
        if endpoint is None:
            return self._refuse(label, "unknown_bot", 404, "unknown bot")
        secret = request.headers.get(SECRET_HEADER)
        if secret is None or not hmac.compare_digest(
            secret.encode("utf-8", "surrogateescape"), endpoint.secret
        ):
            return self._refuse(label, "bad_secret", 401, "wrong secret token")
        length = request.content_length
        if length is not None and length > self._telegram.max_body_bytes:
            return self._refuse(label, "too_large", 413, "body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(label, "too_large", 413, "body too large")
        try:
            update, _ = parse_update(body)
        except InvalidUpdate as exc:
            return self._refuse(label, exc.reason, 400, str(exc))
        endpoint.received.inc()
        record = build_record(body, update, endpoint.bot_id, int(received_at * 1000), "webhook")
        try:
            await self._publisher.publish(record)
        except PublishError as exc:
            self._health.kafka_ok = False
            log.warning("bot %s: answering 503 so Telegram retries: %s", label, exc)
            return self._refuse(label, "kafka_unavailable", 503, "not stored, retry later")
        self._health.kafka_ok = True
        endpoint.published.inc()
        self._latency.observe(time.time() - received_at)
        return web.Response()

    def _refuse(self, label: str, reason: str, status: int, text: str) -> web.Response:
        self._metrics.updates_rejected.labels(label, reason).inc()
        if status != 503:
            log.info("bot %s: refused a webhook request (%d %s)", label, status, reason)
        return web.Response(status=status, text=text)
