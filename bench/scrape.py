"""Reading a process's Prometheus ``/metrics`` page: counters, and histograms between scrapes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import aiohttp

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample by name and label set."""

    samples: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[tuple[str, Labels], float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m:
                labels = frozenset(_LABEL.findall(m[2] or ""))
                samples[(m[1], labels)] = float(m[3])
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value summed over every label set that includes ``labels`` (0 if none)."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def buckets(self, name: str, **labels: str) -> list[tuple[float, float]]:
        """A histogram's cumulative (upper bound, count) pairs, summed over other labels."""
        want = set(labels.items())
        out: dict[float, float] = {}
        for (n, ls), v in self.samples.items():
            if n == f"{name}_bucket" and want <= ls:
                le = dict(ls)["le"]
                bound = math.inf if le == "+Inf" else float(le)
                out[bound] = out.get(bound, 0.0) + v
        return sorted(out.items())

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls) in self.samples if n == name and label in dict(ls)}


@dataclass(frozen=True)
class HistogramDelta:
    """What a histogram observed between two scrapes."""

    buckets: list[tuple[float, float]]
    count: float
    total: float

    @classmethod
    def between(cls, before: Scrape, after: Scrape, name: str, **labels: str) -> HistogramDelta:
        b = dict(before.buckets(name, **labels))
        pairs = [(le, c - b.get(le, 0.0)) for le, c in after.buckets(name, **labels)]
        count = after.value(f"{name}_count", **labels) - before.value(f"{name}_count", **labels)
        total = after.value(f"{name}_sum", **labels) - before.value(f"{name}_sum", **labels)
        return cls(pairs, count, total)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> tuple[float, float] | None:
        """The bucket (lower, upper bound) that holds the ``q`` quantile; None when empty."""
        if not self.count:
            return None
        rank = q * self.count
        lower = 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                return (lower, le)
            lower = le
        return None

    def share_at_most(self, bound: float) -> float | None:
        """The share of observations at or below ``bound`` (a bucket boundary)."""
        if not self.count:
            return None
        return dict(self.buckets).get(bound, 0.0) / self.count


async def scrape(session: aiohttp.ClientSession, url: str) -> Scrape:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        response.raise_for_status()
        return Scrape.parse(await response.text())
