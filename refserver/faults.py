"""Fault injection, the capacity queue and the counters tests read back.

Faults emulate what a GPU inference server does to its clients: latency, a
bounded number of requests served at once, and failures in each shape a client
must survive. Failure decisions are deterministic: the Nth call to an endpoint
fails or not as a function of (seed, endpoint, N) alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# "neg_inf" serves the call, but a scoring call reports the last prompt token's
# log-probability as -inf (vLLM clamps it to -9999.0, SGLang's JSON gives null).
FAIL_MODES = ("http500", "error200", "hang", "drop", "neg_inf")
# "train_job" is not a route: it is the background run of a training job, which
# then ends "failed" instead of answering with a fault.
ENDPOINTS = ("score", "completions", "tokenize", "detokenize", "train", "train_status", "models", "train_job")


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    latency_per_token_us: float = 0.0
    capacity: int = 0  # 0 = unlimited
    fail_rate: float = 0.0
    fail_nth: tuple[int, ...] = ()
    fail_mode: str = "http500"
    fail_endpoints: tuple[str, ...] = ("score",)
    hang_seconds: float = 600.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaultSettings:
        """Settings from JSON-like values; fields not given keep their defaults.
        Raises ValueError naming the offending field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        settings = cls()
        for name, value in values.items():
            settings = replace(settings, **{name: _CHECKS[name](name, value)})
        return settings

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fail_nth"] = list(self.fail_nth)
        d["fail_endpoints"] = list(self.fail_endpoints)
        return d

    def latency_seconds(self, n_tokens: int = 0) -> float:
        return self.latency_ms / 1e3 + self.latency_per_token_us * n_tokens / 1e6


def _number(name: str, value: Any, low: float = 0.0, high: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ValueError(f"{name}: expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _nth_list(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in value):
        raise ValueError(f"{name}: expected a list of call numbers (1-based integers), got {value!r}")
    return tuple(sorted(set(value)))


def _fail_mode(name: str, value: Any) -> str:
    if value not in FAIL_MODES:
        raise ValueError(f"{name}: expected one of {', '.join(FAIL_MODES)}, got {value!r}")
    return value


def _endpoint_list(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(e not in ENDPOINTS for e in value):
        raise ValueError(f"{name}: expected a list of endpoint names from {', '.join(ENDPOINTS)}, got {value!r}")
    return tuple(value)


_CHECKS = {
    "latency_ms": _number,
    "latency_per_token_us": _number,
    "capacity": _count,
    "fail_rate": lambda name, value: _number(name, value, 0.0, 1.0),
    "fail_nth": _nth_list,
    "fail_mode": _fail_mode,
    "fail_endpoints": _endpoint_list,
    "hang_seconds": _number,
}


class CapacityGate:
    """At most ``limit`` holders at once (0 = no limit); the rest wait in arrival
    order. The limit can change while requests wait."""

    def __init__(self, limit: int):
        self._limit = limit
        self._active = 0
        self._condition = asyncio.Condition()
        self.max_active_seen = 0

    async def set_limit(self, limit: int) -> None:
        async with self._condition:
            self._limit = limit
            self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: self._limit == 0 or self._active < self._limit)
            self._active += 1
            self.max_active_seen = max(self.max_active_seen, self._active)
        try:
            yield
        finally:
            async with self._condition:
                self._active -= 1
                self._condition.notify_all()


class Faults:
    """Current settings plus the per-endpoint call counters they are judged by."""

    def __init__(self, settings: FaultSettings, seed: int):
        self.settings = settings
        self.seed = seed
        self.calls: dict[str, int] = {}  # since the last settings change
        self.total_calls: dict[str, int] = {}  # since start-up

    def replace(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.calls = {}

    def count_call(self, endpoint: str) -> tuple[int, str | None]:
        """Count one call; return its 1-based number and the failure mode it must
        show, or None to serve it normally."""
        n = self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        self.total_calls[endpoint] = self.total_calls.get(endpoint, 0) + 1
        s = self.settings
        if endpoint not in s.fail_endpoints:
            return n, None
        if n in s.fail_nth:
            return n, s.fail_mode
        if s.fail_rate > 0 and random.Random(f"{self.seed}:{endpoint}:{n}").random() < s.fail_rate:
            return n, s.fail_mode
        return n, None
