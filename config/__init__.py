"""Settings: built once at start-up and passed down as arguments."""

from config.settings import (
    BotSettings,
    KafkaSettings,
    ReceiveMode,
    Settings,
    SettingsError,
    StoreSettings,
    TelegramSettings,
    WorkerSettings,
    load_settings,
)

__all__ = [
    "BotSettings",
    "KafkaSettings",
    "ReceiveMode",
    "Settings",
    "SettingsError",
    "StoreSettings",
    "TelegramSettings",
    "WorkerSettings",
    "load_settings",
]
