"""Process lifecycle: the first SIGTERM/SIGINT asks for a graceful stop, a second exits at once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

log = logging.getLogger(__name__)

#: Exit codes that let an orchestrator tell a configuration mistake from a crash.
EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_FORCED = 130


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on the first SIGTERM or SIGINT; exit immediately on the second."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        log.info("%s: stopping intake and draining", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
