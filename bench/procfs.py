"""What Linux reports about a process and the machine: resident memory and CPU time, from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``); None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 on (index 0 is the state); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis don't.
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over every core."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in first[:8]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks)
    return (total - idle) / _TICKS, total / _TICKS


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this one wanted to run."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return int(first[7]) / _TICKS


def all_cpu_seconds() -> dict[int, float]:
    """CPU seconds used so far by every process on the machine."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            used = cpu_seconds(int(entry.name))
            if used is not None:
                out[int(entry.name)] = used
    return out


def command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:80] or "?"


@dataclass
class CpuMeter:
    """CPU used by named processes and by the whole machine between ``start`` and ``stop``."""

    pids: dict[str, int]
    _start: dict[str, float | None] | None = None
    _machine: tuple[float, float] | None = None
    _everyone: dict[int, float] | None = None
    _steal: float = 0.0

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_busy_seconds()
        self._steal = steal_seconds()
        self._everyone = all_cpu_seconds()

    def others(self, wall_s: float, top: int = 3) -> list[tuple[str, float]]:
        """The processes outside ``pids`` that used the most CPU since ``start`` (cores)."""
        assert self._everyone is not None
        ours = set(self.pids.values())
        used = []
        for pid, now in all_cpu_seconds().items():
            if pid in ours or wall_s <= 0:
                continue
            cores = (now - self._everyone.get(pid, 0.0)) / wall_s
            if cores >= 0.02:
                used.append((command_of(pid), round(cores, 3)))
        return sorted(used, key=lambda x: -x[1])[:top]

    def stop(self, wall_s: float) -> dict[str, float]:
        """Cores used on average over ``wall_s`` seconds, per process and for the machine."""
        assert self._start is not None and self._machine is not None
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            before, after = self._start[name], cpu_seconds(pid)
            if before is not None and after is not None and wall_s > 0:
                out[name] = round((after - before) / wall_s, 3)
        busy, total = machine_busy_seconds()
        cores = os.cpu_count() or 1
        if total > self._machine[1]:
            machine = (busy - self._machine[0]) / (total - self._machine[1]) * cores
            out["machine"] = round(machine, 3)
            # Everything else on the machine: other engineers' tests, the kernel, the shell.
            out["other"] = round(machine - sum(v for k, v in out.items() if k != "machine"), 3)
        if wall_s > 0:
            # Counted in "machine" above: time a busy host took from this VM.
            out["steal"] = round((steal_seconds() - self._steal) / wall_s, 3)
        return out


def service_pid(state_dir: Path, name: str) -> int | None:
    """The pid ``dev/services.sh`` recorded for ``kafka`` or ``cassandra``, if it is alive."""
    try:
        pid = int((state_dir / name / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def age_seconds(pid: int) -> float | None:
    """How long ago the process started (from ``/proc/<pid>/stat`` and ``/proc/uptime``)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - int(fields[19]) / _TICKS
