"""A local stand-in for the Telegram Bot API, for tests and the demo.

It speaks the Bot API's HTTP protocol on 127.0.0.1 (``/bot<token>/<method>``, parameters in the
query string, a JSON body, a form or multipart, answers ``{"ok": ...}``), so the receiver and
aiogram talk to it exactly as they would to Telegram once ``api_base_url`` points here.

What it implements, with Telegram's semantics:

* ``getUpdates``: ``offset`` confirms (and forgets) every update below it, a negative offset
  keeps only the last ``-offset`` ones; ``limit`` (1-100); a long poll waits up to ``timeout``
  seconds for an update; a newer call ends a waiting one with 409; with a webhook set it answers
  409. The body is built by joining the raw update bytes as they were queued, so a test can check
  byte for byte what reaches Kafka.
* ``getMe``; ``setWebhook``, ``getWebhookInfo`` and ``deleteWebhook`` (url, secret token,
  allowed updates, max connections, pending count, last error). While a webhook is set the
  queued updates are POSTed to it one at a time, in order, with the secret token header; a non-2xx
  answer keeps the update queued and is retried with back-off, as Telegram does.

Test helpers: :meth:`StandIn.enqueue`, :meth:`StandIn.confirmed_up_to`, :meth:`StandIn.fail_next`
(answer errors such as 502 or 429 with ``retry_after``), :meth:`StandIn.hold_get_updates` (keep
getUpdates calls waiting, unanswered and unapplied, until released).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

log = logging.getLogger(__name__)

_METHOD_NOT_FOUND = (404, "Not Found: method not found")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_CONFLICT_OTHER = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Failure:
    """An error answer to give instead of handling a call."""

    status: int = 502
    description: str = "Bad Gateway"
    retry_after: int | None = None


@dataclass
class Webhook:
    """What setWebhook recorded for a bot."""

    url: str
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Bot:
    token: str
    bot_id: int
    updates: deque[tuple[int, bytes]] = field(default_factory=deque)
    last_id: int = 0
    confirmed: int = 0
    allowed_updates: list[str] | None = None
    webhook: Webhook | None = None
    failures: dict[str, deque[Failure]] = field(default_factory=dict)
    poll_generation: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    delivery: asyncio.Task[None] | None = None
    calls: deque[tuple[str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=10_000))

    def wake(self) -> None:
        self.wakeup.set()
        self.wakeup = asyncio.Event()

    def confirm(self, offset: int) -> None:
        if offset > 0:
            while self.updates and self.updates[0][0] < offset:
                self.updates.popleft()
            self.confirmed = max(self.confirmed, offset - 1)
        elif offset < 0:
            while len(self.updates) > -offset:
                self.confirmed = max(self.confirmed, self.updates.popleft()[0])


class StandIn:
    """The stand-in server; use ``async with StandIn(tokens) as api`` and ``api.base_url``."""

    def __init__(self, tokens: list[str] | tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        self._host = host
        self._bots: dict[str, _Bot] = {}
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._gate: asyncio.Event | None = None
        self._held = 0
        self._held_changed = asyncio.Event()
        self._closing = False
        self.port = 0
        for token in tokens:
            self.add_bot(token)

    @property
    def base_url(self) -> str:
        """The value for ``TGBRIDGE_TELEGRAM__API_BASE_URL``."""
        return f"http://{self._host}:{self.port}"

    def add_bot(self, token: str) -> int:
        """Accept ``token`` (``<bot id>:<secret>``); returns the bot id."""
        bot_id, sep, secret = token.partition(":")
        if not (sep and bot_id.isdigit() and secret):
            raise ValueError("a bot token looks like 123456:ABC-DEF")
        self._bots.setdefault(token, _Bot(token, int(bot_id)))
        return int(bot_id)

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop: end waiting long polls (with no updates), stop deliveries, close the server."""
        self._closing = True
        if self._gate is not None:
            self._gate.set()
        for bot in self._bots.values():
            bot.wake()
            if bot.delivery is not None:
                bot.delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.delivery
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> StandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def enqueue(self, raw: bytes, token: str | None = None) -> int:
        """Queue one update exactly as given; returns its update_id.

        ``raw`` must be a JSON object with an integer ``update_id`` above every earlier one of
        the bot, as Telegram's are.
        """
        bot = self._bot(token)
        update = orjson.loads(raw)
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if type(update_id) is not int:
            raise ValueError("an update is a JSON object with an integer update_id")
        if update_id <= max(bot.last_id, bot.confirmed):
            raise ValueError(
                f"update_id {update_id} is not above {max(bot.last_id, bot.confirmed)}"
            )
        bot.updates.append((update_id, bytes(raw)))
        bot.last_id = update_id
        bot.wake()
        return update_id

    def next_update_id(self, token: str | None = None) -> int:
        """An update_id that :meth:`enqueue` accepts next."""
        bot = self._bot(token)
        return max(bot.last_id, bot.confirmed) + 1

    def confirmed_up_to(self, token: str | None = None) -> int:
        """The highest update_id Telegram would consider confirmed (0 when none is)."""
        return self._bot(token).confirmed

    def pending(self, token: str | None = None) -> list[bytes]:
        """The raw updates still queued (not confirmed, not delivered)."""
        return [raw for _, raw in self._bot(token).updates]

    def webhook(self, token: str | None = None) -> Webhook | None:
        return self._bot(token).webhook

    def calls(self, token: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """The parameters of the calls received (the last 10,000), oldest first, of one method
        if given."""
        wanted = method.lower() if method else None
        return [p for m, p in self._bot(token).calls if wanted is None or m == wanted]

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 502,
        description: str = "Bad Gateway",
        retry_after: int | None = None,
        method: str = "getUpdates",
        token: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with this error instead."""
        failures = self._bot(token).failures.setdefault(method.lower(), deque())
        failures.extend([Failure(status, description, retry_after)] * count)

    def hold_get_updates(self) -> None:
        """Keep every getUpdates call waiting, not yet applied, until :meth:`release_get_updates`.

        A held call whose client has gone when released is dropped unapplied, as if it never
        reached Telegram.
        """
        if self._gate is None:
            self._gate = asyncio.Event()

    def release_get_updates(self) -> None:
        """Let every held call proceed; :meth:`wait_for_held` counts afresh from here."""
        if self._gate is not None:
            self._gate.set()
            self._gate = None
            self._held = 0

    async def wait_for_held(self, count: int = 1, within: float = 10.0) -> None:
        """Wait until ``count`` getUpdates calls are held (since the last release)."""
        async with asyncio.timeout(within):
            while self._held < count:
                await self._held_changed.wait()
                self._held_changed.clear()

    def _bot(self, token: str | None) -> _Bot:
        if token is None:
            if len(self._bots) != 1:
                raise ValueError("name the bot's token: the stand-in has several bots")
            return next(iter(self._bots.values()))
        return self._bots[token]

    async def _dispatch(self, request: web.Request) -> web.Response:
        bot = self._bots.get(request.match_info["token"])
        if bot is None:
            return _error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        try:
            params = await _params(request)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        bot.calls.append((method, params))
        failures = bot.failures.get(method)
        if failures:
            failure = failures.popleft()
            return _error(failure.status, failure.description, failure.retry_after)
        handler = {
            "getupdates": self._get_updates,
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "deletewebhook": self._delete_webhook,
        }.get(method)
        if handler is None:
            return _error(*_METHOD_NOT_FOUND)
        try:
            return await handler(bot, params, request)
        except (TypeError, ValueError) as exc:
            return _error(400, f"Bad Request: {exc}")

    async def _get_updates(
        self, bot: _Bot, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        gate = self._gate
        if gate is not None:
            self._held += 1
            self._held_changed.set()
            try:
                await gate.wait()
            finally:
                if gate is self._gate:
                    self._held -= 1
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)
        if bot.webhook is not None:
            return _error(409, _CONFLICT_WEBHOOK)
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if params.get("allowed_updates") is not None:
            bot.allowed_updates = list(params["allowed_updates"])
        bot.confirm(offset)
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.wake()
        deadline = time.monotonic() + timeout
        while not bot.updates and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.wakeup.wait(), remaining)
            if bot.poll_generation != generation:
                return _error(409, _CONFLICT_OTHER)
            if bot.webhook is not None:
                return _error(409, _CONFLICT_WEBHOOK)
        raws = [raw for _, raw in list(bot.updates)[:limit]]
        body = b'{"ok":true,"result":[' + b",".join(raws) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def _get_me(
        self, bot: _Bot, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        return _ok(
            {
                "id": bot.bot_id,
                "is_bot": True,
                "first_name": f"Stand-in {bot.bot_id}",
                "username": f"standin_{bot.bot_id}_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _set_webhook(
        self, bot: _Bot, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        url = str(params.get("url") or "")
        if _truthy(params.get("drop_pending_updates")):
            self._drop_pending(bot)
        if not url:
            await self._remove_webhook(bot)
            return _ok(True, "Webhook was deleted")
        if not url.startswith(("http://", "https://")):
            return _error(400, "Bad Request: bad webhook: invalid URL")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            return _error(
                400, "Bad Request: bad webhook: secret token contains unallowed characters"
            )
        max_connections = int(params.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            return _error(400, "Bad Request: bad webhook: max_connections must be 1-100")
        allowed = params.get("allowed_updates")
        await self._remove_webhook(bot)
        bot.webhook = Webhook(
            url,
            str(secret) if secret is not None else None,
            list(allowed) if allowed is not None else bot.allowed_updates,
            max_connections,
        )
        bot.wake()
        bot.delivery = asyncio.create_task(self._deliver(bot, bot.webhook))
        return _ok(True, "Webhook was set")

    async def _get_webhook_info(
        self, bot: _Bot, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        hook = bot.webhook
        if hook is not None:
            info["url"] = hook.url
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return _ok(info)

    async def _delete_webhook(
        self, bot: _Bot, params: dict[str, Any], request: web.Request
    ) -> web.Response:
        if _truthy(params.get("drop_pending_updates")):
            self._drop_pending(bot)
        await self._remove_webhook(bot)
        return _ok(True, "Webhook was deleted")

    def _drop_pending(self, bot: _Bot) -> None:
        if bot.updates:
            bot.confirmed = max(bot.confirmed, bot.updates[-1][0])
        bot.updates.clear()

    async def _remove_webhook(self, bot: _Bot) -> None:
        bot.webhook = None
        bot.wake()
        if bot.delivery is not None:
            bot.delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot.delivery
            bot.delivery = None

    async def _deliver(self, bot: _Bot, hook: Webhook) -> None:
        """POST queued updates to the webhook in order; an update leaves the queue on a 2xx."""
        if self._client is None:
            self._client = aiohttp.ClientSession()
        delay = 0.1
        headers = {"Content-Type": "application/json"}
        if hook.secret_token is not None:
            headers[SECRET_HEADER] = hook.secret_token
        while not self._closing:
            if not bot.updates:
                await bot.wakeup.wait()
                continue
            update_id, raw = bot.updates[0]
            try:
                async with self._client.post(
                    hook.url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
                ) as resp:
                    ok = 200 <= resp.status < 300
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                ok, error = False, f"Connection failed: {type(exc).__name__}"
            if ok:
                if bot.updates and bot.updates[0][0] == update_id:
                    bot.updates.popleft()
                    bot.confirmed = max(bot.confirmed, update_id)
                delay = 0.1
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _params(request: web.Request) -> dict[str, Any]:
    """A call's parameters from its query string and body, JSON-decoded where Telegram does."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.read()
            if body:
                doc = orjson.loads(body)
                if not isinstance(doc, dict):
                    raise ValueError("the JSON body is not an object")
                return params | doc
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    if isinstance(params.get("allowed_updates"), str):
        text = params["allowed_updates"].strip()
        params["allowed_updates"] = json.loads(text) if text else []
    return params


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _ok(result: Any, description: str | None = None) -> web.Response:
    doc: dict[str, Any] = {"ok": True, "result": result}
    if description:
        doc["description"] = description
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    doc: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        doc["parameters"] = {"retry_after": retry_after}
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json")
