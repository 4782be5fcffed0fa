"""Long polling that confirms an update to Telegram only after Kafka has acknowledged it.

Telegram forgets an update once ``getUpdates`` is called with a higher offset, so the offset moves
past a batch only when every update of it is acknowledged; until then the same offset is asked
again and Telegram re-sends the batch. aiogram's ``Bot`` provides the HTTP session and the server's
URLs, but the request is made here so the raw response bytes are kept: aiogram's Dispatcher
confirms offsets before handling and its models would re-serialise the updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession

from config import BotSettings, TelegramSettings
from worker.metrics import Metrics
from worker.receiver.backoff import Backoff
from worker.receiver.health import ReceiverHealth
from worker.receiver.keys import Record, build_record
from worker.receiver.publisher import Publisher, PublishError
from worker.receiver.rawjson import InvalidUpdate, RawJsonError, loads, split_result, update_id_of
from worker.receiver.redact import describe, redact

log = logging.getLogger(__name__)

#: Beyond the long-poll timeout, how long a getUpdates request may take.
REQUEST_GRACE_S = 10.0


class TelegramError(Exception):
    """getUpdates failed; ``code`` is Telegram's error code (0 for network and bad responses)."""

    def __init__(self, message: str, code: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch that missed its publish deadline but that Kafka may still acknowledge."""

    pending: asyncio.Future[Any]
    next_offset: int
    count: int
    received_at: float


@dataclass(frozen=True, slots=True)
class Batch:
    """One getUpdates answer: each update's raw bytes beside its parsed form."""

    raws: list[bytes]
    updates: list[Any]


def parse_get_updates(status: int, body: bytes) -> Batch:
    """Interpret a getUpdates response, or raise :class:`TelegramError`."""
    try:
        doc = loads(body)
    except RawJsonError:
        raise TelegramError(f"HTTP {status} with a body that is not JSON", status) from None
    if not isinstance(doc, dict):
        raise TelegramError(f"HTTP {status} with a JSON body that is not an object", status)
    if doc.get("ok") is not True:
        code = doc.get("error_code")
        code = code if type(code) is int else status
        params = doc.get("parameters")
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = None
        description = str(doc.get("description") or f"HTTP {status}")
        raise TelegramError(description, code, retry_after)
    updates = doc.get("result")
    if not isinstance(updates, list):
        raise TelegramError("the response has no result array", status)
    try:
        raws = split_result(body)
    except RawJsonError as exc:
        raise TelegramError(f"the response could not be split: {exc}", status) from None
    if len(raws) != len(updates):
        raise TelegramError("the response's result could not be split element by element", status)
    return Batch(raws, updates)


class PollingReceiver:
    """Receives one bot's updates by long polling and publishes them, in order, to Kafka."""

    transport = "polling"

    def __init__(
        self,
        bot_settings: BotSettings,
        telegram: TelegramSettings,
        bot: Bot,
        publisher: Publisher,
        metrics: Metrics,
        health: ReceiverHealth,
        backoff: Backoff | None = None,
    ) -> None:
        self.bot_id = bot_settings.bot_id
        self._token = bot_settings.token.get_secret_value()
        self._telegram = telegram
        self._publisher = publisher
        self._health = health
        self._backoff = backoff or Backoff()
        if not isinstance(bot.session, AiohttpSession):
            raise TypeError("long polling needs the Bot's AiohttpSession for raw responses")
        self._session = bot.session
        self._url = bot.session.api.api_url(token=self._token, method="getUpdates")
        label = str(self.bot_id)
        self._received = metrics.updates_received.labels(label, self.transport)
        self._published = metrics.updates_published.labels(label, self.transport)
        self._rejected = metrics.updates_rejected
        self._latency = metrics.publish_latency.labels(self.transport)
        #: The offset of the next getUpdates: everything below it is in Kafka.
        self.next_offset: int | None = None
        #: The offset Telegram last accepted: everything below it is confirmed.
        self.confirmed_offset: int | None = None
        self._in_flight: _InFlight | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, then settle what is in flight and confirm it."""
        log.info("bot %d: long polling %s", self.bot_id, self._telegram.api_base_url)
        cancelled = False
        try:
            await self._poll(stop)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            # A cancelled receiver (shutdown deadline passed) leaves at once; Telegram re-sends.
            if not cancelled:
                await self._confirm()

    async def _poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._in_flight is not None:
                if not await self._settle(stop):
                    await self._pause(stop, self._backoff.next_delay())
                continue
            batch = await self._fetch_or_stop(stop)
            if batch is not None:
                await self._publish(batch, stop)
        if self._in_flight is not None:
            await self._settle(stop, stopping=True)

    async def _fetch_or_stop(self, stop: asyncio.Event) -> Batch | None:
        """One getUpdates, abandoned if ``stop`` is set first (nothing it returns is confirmed)."""
        fetch = asyncio.ensure_future(
            self._get_updates(self.next_offset, self._telegram.poll_timeout_s)
        )
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not fetch.done():
                fetch.cancel()
                await asyncio.wait({fetch})
        if fetch.cancelled():
            return None
        try:
            batch = fetch.result()
        except TelegramError as exc:
            await self._pause(stop, self._telegram_delay(exc))
            return None
        self.confirmed_offset = self.next_offset
        return batch

    async def _get_updates(
        self, offset: int | None, poll_timeout: int, limit: int | None = None
    ) -> Batch:
        """One getUpdates request, made directly so the raw body is kept."""
        payload: dict[str, Any] = {
            "timeout": poll_timeout,
            "limit": limit or self._telegram.poll_limit,
            "allowed_updates": self._telegram.allowed_updates,
        }
        if offset is not None:
            payload["offset"] = offset
        session = await self._session.create_session()
        try:
            async with session.post(
                self._url,
                data=orjson.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=poll_timeout + REQUEST_GRACE_S, connect=10),
            ) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # aiohttp's messages can quote the URL, which holds the token.
            raise TelegramError(describe(exc, [self._token])) from None
        return parse_get_updates(status, body)

    def _telegram_delay(self, exc: TelegramError) -> float:
        delay = self._backoff.next_delay()
        reason = redact(str(exc), [self._token])
        if exc.code == 409:
            log.error(
                "bot %d: Telegram refuses getUpdates (409 %s): a webhook is set for this bot "
                "(remove it with `tgbridge webhook delete`) or another receiver polls it",
                self.bot_id,
                reason,
            )
        elif exc.code == 429:
            delay = max(delay, float(exc.retry_after or 0))
            log.warning("bot %d: Telegram asks to wait %.1f s (429)", self.bot_id, delay)
        elif exc.code in (401, 404):
            log.error("bot %d: Telegram rejects the token (%d %s)", self.bot_id, exc.code, reason)
        else:
            log.warning(
                "bot %d: getUpdates failed (%s); retrying in %.1f s", self.bot_id, reason, delay
            )
        return delay

    async def _publish(self, batch: Batch, stop: asyncio.Event) -> None:
        received_at = time.time()
        received_ms = int(received_at * 1000)
        records: list[Record] = []
        last_id: int | None = None
        for raw, update in zip(batch.raws, batch.updates, strict=True):
            try:
                update_id = update_id_of(update)
            except InvalidUpdate as exc:
                self._rejected.labels(str(self.bot_id), exc.reason).inc()
                log.error(
                    "bot %d: skipped a getUpdates element of %d bytes: %s",
                    self.bot_id,
                    len(raw),
                    exc,
                )
                continue
            records.append(build_record(raw, update, self.bot_id, received_ms, "polling"))
            last_id = update_id if last_id is None else max(last_id, update_id)
        if last_id is None:
            if batch.raws:
                await self._pause(stop, self._backoff.next_delay())
            else:
                self._backoff.reset()
            return
        self._received.inc(len(records))
        try:
            await self._publisher.publish_many(records)
        except PublishError as exc:
            self._health.kafka_ok = False
            log.warning("bot %d: %s; offset %s not advanced", self.bot_id, exc, self.next_offset)
            if exc.pending is not None:
                self._in_flight = _InFlight(exc.pending, last_id + 1, len(records), received_at)
            await self._pause(stop, self._backoff.next_delay())
            return
        self._acked(last_id + 1, len(records), received_at)

    async def _settle(self, stop: asyncio.Event, stopping: bool = False) -> bool:
        """Wait for a batch that missed its deadline; True once it is settled either way.

        Kafka keeps retrying such a batch, so waiting for it avoids sending it again; if it fails,
        it is dropped here and fetched again from Telegram, whose offset never moved past it.
        """
        assert self._in_flight is not None
        in_flight = self._in_flight
        pending = in_flight.pending
        stopped = None if stopping else asyncio.ensure_future(stop.wait())
        try:
            # asyncio.wait never cancels what it waits for: the batch stays with the producer.
            await asyncio.wait(
                {pending} if stopped is None else {pending, stopped},
                timeout=self._publisher.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if stopped is not None:
                stopped.cancel()
        if not pending.done():
            return False
        self._in_flight = None
        if pending.cancelled() or pending.exception() is not None:
            log.warning("bot %d: Kafka refused a batch; fetching it again", self.bot_id)
            return True
        self._acked(in_flight.next_offset, in_flight.count, in_flight.received_at)
        return True

    def _acked(self, next_offset: int, count: int, received_at: float) -> None:
        self._published.inc(count)
        elapsed = time.time() - received_at
        for _ in range(count):
            self._latency.observe(elapsed)
        self._health.kafka_ok = True
        self._backoff.reset()
        self.next_offset = next_offset

    async def _confirm(self) -> None:
        """Tell Telegram that everything below the next offset is stored, before exiting."""
        if self.next_offset is None or self.next_offset == self.confirmed_offset:
            return
        try:
            await self._get_updates(self.next_offset, poll_timeout=0, limit=1)
        except TelegramError as exc:
            log.warning(
                "bot %d: could not confirm offset %d (%s); Telegram will send those updates again",
                self.bot_id,
                self.next_offset,
                redact(str(exc), [self._token]),
            )
            return
        self.confirmed_offset = self.next_offset
        log.info("bot %d: confirmed updates below %d", self.bot_id, self.next_offset)

    async def _pause(self, stop: asyncio.Event, delay: float) -> None:
        """Wait ``delay`` seconds, or less if ``stop`` is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
