"""The results file says at which priority each process of a run ran."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.machine import thread_nice


def test_thread_nice_reads_every_thread_of_a_process() -> None:
    # A child at nice 7 with a second thread reniced to 19 (raising a nice value needs no
    # privilege): both values are reported.
    child = subprocess.Popen(
        [
            "nice",
            "-n",
            "7",
            sys.executable,
            "-c",
            "import os, threading, time\n"
            "def other():\n"
            "    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)\n"
            "    print('ready', flush=True)\n"
            "    time.sleep(60)\n"
            "threading.Thread(target=other, daemon=True).start()\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert thread_nice(child.pid) == sorted({min(own + 7, 19), 19})
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_thread_nice_of_a_process_that_is_gone_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert thread_nice(child.pid) is None
