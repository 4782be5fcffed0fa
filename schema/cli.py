"""``tgbridge migrate``: bring the keyspace up to the newest schema."""

from __future__ import annotations

import asyncio

import click

from schema.migrate import MigrationError
from schema.migrate import migrate as run_migrations
from schema.store import Store, StoreUnavailableError
from worker.lifecycle import EXIT_CONFIG, EXIT_UNAVAILABLE


@click.command()
def migrate() -> None:
    """Create the keyspace and apply pending schema migrations (safe to run twice)."""
    from worker.cli import settings_or_exit

    settings = settings_or_exit()

    async def run() -> None:
        store = await Store.connect(settings.store)
        try:
            result = await run_migrations(store, settings.store)
        finally:
            await store.close()
        ks = settings.store.keyspace
        if result.applied:
            click.echo(
                f"applied {', '.join(result.applied)} to keyspace {ks} "
                f"(now at version {result.version})"
            )
        else:
            click.echo(f"nothing pending: keyspace {ks} is at version {result.version}")

    try:
        asyncio.run(run())
    except StoreUnavailableError as exc:
        click.echo(f"tgbridge migrate: {exc}", err=True)
        raise SystemExit(EXIT_UNAVAILABLE) from None
    except MigrationError as exc:
        click.echo(f"tgbridge migrate: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
