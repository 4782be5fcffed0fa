"""All of tgbridge's settings, read once at start-up from the environment and `.env`.

Every variable starts with ``TGBRIDGE_``; nested groups use ``__`` (``TGBRIDGE_KAFKA__TOPIC``).
A bad, missing or misspelled variable raises :class:`SettingsError`, whose message names it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "TGBRIDGE_"
#: Variables of dev/services.sh (local service ports), not settings of the application.
DEV_PREFIX = "TGBRIDGE_DEV_"
NESTED = "__"

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

#: Every update type that carries or changes a stored message, plus reactions and member changes,
#: which Telegram leaves out when ``allowed_updates`` is empty.
DEFAULT_ALLOWED_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "my_chat_member",
    "chat_member",
)


class SettingsError(Exception):
    """A setting is missing, malformed or unknown; the message names the variable."""


class ReceiveMode(StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"


class StoreIO(StrEnum):
    #: The driver's sockets on the process's own asyncio loop (``schema/reactor.py``).
    EVENT_LOOP = "event_loop"
    #: The driver's own libev I/O thread (always used with TLS).
    DRIVER_THREAD = "driver_thread"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    TEXT = "text"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BotSettings(BaseModel):
    """One bot: its token, how it receives updates and, for webhooks, its own secret."""

    model_config = {"extra": "forbid"}

    token: SecretStr
    mode: ReceiveMode | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("token")
    @classmethod
    def _token_shape(cls, v: SecretStr) -> SecretStr:
        bot_id, sep, rest = v.get_secret_value().partition(":")
        if not sep or not bot_id.isdigit() or not rest:
            raise ValueError("a bot token looks like 123456:ABC-DEF... (digits, a colon, a secret)")
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v.get_secret_value()):
            raise ValueError("a webhook secret is 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return v

    @property
    def bot_id(self) -> int:
        """The numeric id Telegram gives the bot: the token's part before the colon."""
        return int(self.token.get_secret_value().partition(":")[0])


class KafkaSettings(BaseModel):
    model_config = {"extra": "forbid"}

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "telegram.updates"
    dlq_topic: str = "telegram.updates.dlq"
    partitions: int = Field(12, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=10)
    create_topics: bool = True
    security_protocol: str = Field("PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    sasl_mechanism: str | None = Field(None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    client_id: str = "tgbridge"
    publish_timeout_s: float = Field(5.0, gt=0, le=120)

    @field_validator("topic", "dlq_topic")
    @classmethod
    def _topic_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", v):
            raise ValueError("a topic name is 1-249 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
        return v


class StoreSettings(BaseModel):
    model_config = {"extra": "forbid"}

    contact_points: Annotated[list[str], NoDecode] = ["127.0.0.1"]
    port: int = Field(9042, ge=1, le=65535)
    keyspace: str = "tgbridge"
    local_dc: str = "datacenter1"
    replication: Annotated[dict[str, int], NoDecode] = {"datacenter1": 1}
    username: str | None = None
    password: SecretStr | None = None
    tls_enabled: bool = False
    tls_cafile: Path | None = None
    write_consistency: str = "LOCAL_QUORUM"
    read_consistency: str = "LOCAL_ONE"
    serial_consistency: str = "LOCAL_SERIAL"
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    retry_attempts: int = Field(3, ge=1, le=20)
    retry_min_s: float = Field(0.1, gt=0)
    retry_max_s: float = Field(2.0, gt=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)
    prepared_cache_size: int = Field(1000, ge=10)
    #: Where the CQL driver's socket I/O runs: on the process's event loop (no thread hand-over
    #: per request and answer), or on the driver's own I/O thread. TLS always uses the latter.
    io: StoreIO = StoreIO.EVENT_LOOP
    #: With ``io=event_loop``: send reads and writes on the pooled connections directly
    #: (``schema/lean.py``) instead of through ``Session.execute_async``; anything that needs a
    #: retry elsewhere or a re-prepare still goes through the driver. False: always the driver.
    lean_requests: bool = True

    _split_points = field_validator("contact_points", mode="before")(_split_csv)

    @field_validator("keyspace")
    @classmethod
    def _keyspace_name(cls, v: str) -> str:
        if not _IDENTIFIER.fullmatch(v):
            raise ValueError("a keyspace is a lower-case CQL identifier: [a-z][a-z0-9_]{0,47}")
        return v

    @field_validator("replication", mode="before")
    @classmethod
    def _replication_map(cls, v: Any) -> Any:
        """Accept ``dc1:3,dc2:3`` as well as a mapping."""
        if isinstance(v, str):
            out: dict[str, int] = {}
            for part in _split_csv(v):
                dc, sep, rf = part.partition(":")
                if not sep or not rf.strip().isdigit():
                    raise ValueError(
                        f"expected DATACENTER:FACTOR pairs like dc1:3,dc2:3, got {part!r}"
                    )
                out[dc.strip()] = int(rf)
            return out
        return v

    @field_validator("write_consistency", "read_consistency", "serial_consistency")
    @classmethod
    def _consistency(cls, v: str) -> str:
        from cassandra import ConsistencyLevel

        if v.upper() not in ConsistencyLevel.name_to_value:
            raise ValueError(f"unknown consistency level {v!r}")
        return v.upper()

    @model_validator(mode="after")
    def _local_dc_replicated(self) -> StoreSettings:
        if self.local_dc not in self.replication:
            raise ValueError(
                f"TGBRIDGE_STORE__LOCAL_DC {self.local_dc!r} has no entry in "
                f"TGBRIDGE_STORE__REPLICATION {self.replication}"
            )
        return self


class TelegramSettings(BaseModel):
    model_config = {"extra": "forbid"}

    bots: list[BotSettings] = []
    mode: ReceiveMode = ReceiveMode.POLLING
    api_base_url: str = "https://api.telegram.org"
    allowed_updates: Annotated[list[str], NoDecode] = list(DEFAULT_ALLOWED_UPDATES)
    poll_timeout_s: int = Field(30, ge=0, le=50)
    poll_limit: int = Field(100, ge=1, le=100)
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, ge=1, le=65535)
    webhook_path: str = "/telegram/{bot_id}"
    webhook_public_url: str | None = None
    webhook_max_connections: int = Field(40, ge=1, le=100)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    restrict_to_telegram_ips: bool = False
    drop_pending_updates: bool = False

    _split_updates = field_validator("allowed_updates", mode="before")(_split_csv)

    @field_validator("bots", mode="before")
    @classmethod
    def _bare_tokens(cls, v: Any) -> Any:
        """A bot may be given as a bare token string instead of an object."""
        if isinstance(v, list):
            return [{"token": b} if isinstance(b, str) else b for b in v]
        return v

    @field_validator("webhook_path")
    @classmethod
    def _path_has_bot(cls, v: str) -> str:
        if not v.startswith("/") or "{bot_id}" not in v:
            raise ValueError("the webhook path starts with / and contains {bot_id}")
        return v

    def mode_of(self, bot: BotSettings) -> ReceiveMode:
        return bot.mode or self.mode


class WorkerSettings(BaseModel):
    model_config = {"extra": "forbid"}

    group_id: str = "tgbridge-consumers"
    concurrency: int = Field(256, ge=1, le=4096)
    batch_max_records: int = Field(500, ge=1, le=100_000)
    max_inflight_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)
    #: The consumer's fetches while idle: Kafka answers once ``fetch_min_bytes`` are there or
    #: ``fetch_max_wait_ms`` have passed (Kafka's defaults: an idle consumer does not poll).
    fetch_min_bytes: int = Field(1, ge=1, le=64 * 1024 * 1024)
    fetch_max_wait_ms: int = Field(500, ge=1, le=30_000)
    #: While records flow, each fetch waits up to this long for more (or 64 KiB), which spares
    #: the broker and the consumer a fetch round per record or two at steady rates
    #: (:mod:`consumers.fetching`). 0: the settings above always.
    fetch_gather_ms: int = Field(5, ge=0, le=1000)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9108, ge=0, le=65535)
    shutdown_timeout_s: float = Field(20.0, gt=0, le=600)
    pending_update_limit: int = Field(1000, ge=0)
    #: The consumer's GIL switch interval: how long the CQL driver's I/O thread may wait for the
    #: event loop's thread to let go of the GIL (Python's default is 5 ms).
    switch_interval_ms: float = Field(0.5, gt=0, le=100)
    #: Records younger than this (by their Kafka timestamp) are live traffic: a new message whose
    #: key needs no claim is written without its dedupe read. 0 reads first always.
    live_window_s: float = Field(300.0, ge=0, le=3600)
    #: Every this many seconds the consumer gives the C heap's free pages back to the system
    #: (glibc's ``malloc_trim``), so its resident memory follows what it holds rather than the
    #: high-water mark of its last burst (:mod:`worker.heap`). 0: never.
    heap_trim_interval_s: float = Field(60.0, ge=0, le=86_400)
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class Settings(BaseSettings):
    """The root of every setting; build it once with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
    )

    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    telegram: TelegramSettings = TelegramSettings()
    worker: WorkerSettings = WorkerSettings()

    def printable(self) -> dict[str, Any]:
        """A form safe to log: secrets come out as ``**********``."""
        return self.model_dump(mode="json")


def env_name(loc: tuple[str | int, ...]) -> str:
    """The environment variable behind a validation error's location."""
    head: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        head.append(str(part))
    return ENV_PREFIX + NESTED.join(head).upper()


def known_variables() -> list[str]:
    names: list[str] = []
    for group, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        names.extend(env_name((group, sub)) for sub in model.model_fields)
    return names


def _unknown_variables(environ: Mapping[str, str], env_file: Path | None) -> list[str]:
    seen = [
        k.upper()
        for k in environ
        if k.upper().startswith(ENV_PREFIX) and not k.upper().startswith(DEV_PREFIX)
    ]
    if env_file is not None and env_file.is_file():
        for line in env_file.read_text(encoding="utf-8").splitlines():
            key = line.strip().removeprefix("export ").partition("=")[0].strip().upper()
            if key.startswith(ENV_PREFIX):
                seen.append(key)
    known = set(known_variables())
    return sorted({k for k in seen if k not in known})


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """Read and validate the settings, or raise :class:`SettingsError` naming the variable."""
    unknown = _unknown_variables(os.environ, env_file)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known_variables(), n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise SettingsError("unknown setting " + ", ".join(hints))
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        raise SettingsError(
            f"{env_name(first['loc'])}: {first['msg']}" + (f" (and {more} more)" if more else "")
        ) from None
