"""The ``tgbridge`` command line: one entry point, one subcommand per process or tool."""

from __future__ import annotations

from importlib.metadata import version

import click

from config import Settings, SettingsError, load_settings
from worker.lifecycle import EXIT_CONFIG
from worker.logs import setup_logging


def settings_or_exit() -> Settings:
    """Build the settings, or end with one line naming the bad variable (exit code 2)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"tgbridge: configuration error: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    setup_logging(settings.worker.log_format, settings.worker.log_level)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("tgbridge"), prog_name="tgbridge")
def main() -> None:
    """tgbridge: every message a Telegram bot sees, stored exactly once."""


def _register() -> None:
    from consumers.cli import consumer, demo, dlq, export, history, replay
    from schema.cli import migrate

    for command in (migrate, consumer, history, export, replay, dlq, demo):
        main.add_command(command)
    from worker.receiver.cli import receiver_command, webhook_group

    main.add_command(receiver_command)
    main.add_command(webhook_group)


_register()

if __name__ == "__main__":
    main()
