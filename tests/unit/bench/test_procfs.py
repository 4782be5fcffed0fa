"""How old a process is: the runner reads it to decide whether to warm the services' JVMs."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.procfs import age_seconds


def test_a_process_started_now_is_seconds_old_and_grows_older() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        first = age_seconds(child.pid)
        assert first is not None and 0 <= first < 5
        time.sleep(1.2)
        later = age_seconds(child.pid)
        assert later is not None and later - first >= 1.0
    finally:
        child.kill()
        child.wait()


def test_a_gone_process_has_no_age() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert age_seconds(child.pid) is None
