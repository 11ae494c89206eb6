"""The warm pool: sandboxes started ahead of demand, kernel up (the stack is imported on first use).

Each pooled sandbox is handed out once and never returns to the pool, and only while it still
runs (a sandbox removed from outside is dropped, and the caller cold-starts). The target size
adapts to demand: it grows (up to ``maximum``) when acquisitions find the pool empty or drain
it, and after a quiet spell (``quiet_seconds`` without an acquisition) it falls back to its
resting size (``size``, within ``minimum``..``maximum``), the surplus sandboxes removed at once.
A pooled sandbox stops itself ``lease`` seconds after the last tick that saw it, so a pool whose
engine died does not run on; a session that takes one gives it the session's own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from . import errors, metrics
from .kernel import Kernel, KernelLimits
from .sandbox.base import Sandbox, SandboxBackend, SandboxSpec

log = logging.getLogger(__name__)
STACK_IMPORTS = "__import__('numpy'); __import__('pandas'); __import__('matplotlib.pyplot')"
"""The resume pool's warm-up: the stack a saved namespace usually needs, imported without
binding a name (the image binds np, pd and plt on a cell's first use)."""


@dataclass
class Warm:
    sandbox: Sandbox
    kernel: Kernel


class WarmPool:
    def __init__(
        self,
        backend: SandboxBackend,
        spec: SandboxSpec,
        limits: KernelLimits,
        *,
        size: int,
        minimum: int,
        maximum: int,
        parallel: int = 2,
        quiet_seconds: float = 60.0,
        lease: float = 120.0,
        name: str = "sessions",
        warm_up: str | None = None,
    ) -> None:
        """``warm_up``: code each pooled kernel runs once started (the engine's own, unseen)."""
        self.spec = spec
        self.name = name
        self._warm_up = warm_up
        self._backend = backend
        self._limits = limits
        self.minimum = max(0, min(minimum, maximum))
        self.maximum = max(0, maximum)
        self.resting = max(self.minimum, min(size, self.maximum))
        self.target = self.resting
        self._ready: deque[Warm] = deque()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._filled = asyncio.Event()
        self._parallel = asyncio.Semaphore(max(1, parallel))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._quiet = quiet_seconds
        self._lease = lease
        self._renewed_at = time.monotonic()
        self._last_demand = time.monotonic()
        self._closed = False
        self.hits = 0
        self.misses = 0

    @property
    def ready(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        self._task = asyncio.create_task(self._refill_forever(), name="warm-pool")
        self._wake.set()

    async def acquire_live(self) -> Warm | None:
        """Like ``acquire``, but never a sandbox that has stopped since it was pooled: those
        are removed and the next one tried. One cheap state query per acquisition."""
        while (warm := self.acquire()) is not None:
            try:
                if await warm.sandbox.is_running():
                    return warm
            except errors.EngineError:
                return None  # the backend is in trouble: the cold start says how
            log.warning("warm pool: sandbox %s had stopped; dropped", warm.sandbox.id)
            self._spawn(_discard(warm))
            if not self._ready:
                return None
        return None

    def acquire(self) -> Warm | None:
        """A ready sandbox, or None (the caller cold-starts). Never blocks."""
        self._last_demand = time.monotonic()
        if self._ready:
            warm = self._ready.popleft()
            self.hits += 1
            metrics.POOL_ACQUIRES.labels(self.name, "warm").inc()
            if not self._ready and self.target < self.maximum:
                self.target += 1  # drained: demand outruns the pool
        else:
            warm = None
            self.misses += 1
            metrics.POOL_ACQUIRES.labels(self.name, "cold").inc()
            self.target = min(self.maximum, max(self.target, self.minimum) + 1)
        metrics.POOL_READY.labels(self.name).set(len(self._ready))
        self._wake.set()
        return warm

    async def wait_ready(self, count: int | None = None, timeout: float = 120.0) -> None:
        """Wait until ``count`` (default: the target) sandboxes are ready. For tests, benches."""
        want = self.target if count is None else count
        async with asyncio.timeout(timeout):
            while len(self._ready) < want:
                self._filled.clear()
                self._wake.set()
                await self._filled.wait()

    async def _refill_forever(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            self._shrink_if_quiet()
            missing = self.target - len(self._ready) - self._starting
            for _ in range(max(0, missing)):
                self._starting += 1
                task = asyncio.create_task(self._start_one())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _shrink_if_quiet(self) -> None:
        """After a burst, back to the resting size in one step. (It used to step down by one
        sandbox per quiet spell, so a pool grown to 16 kept most of them for a quarter hour.)"""
        if time.monotonic() - self._last_demand <= self._quiet or self.target <= self.resting:
            return
        self.target = self.resting
        while len(self._ready) > self.target:
            self._spawn(_discard(self._ready.pop()))
        metrics.POOL_READY.labels(self.name).set(len(self._ready))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        try:
            async with self._parallel:
                if self._closed:
                    return
                sandbox = await self._backend.create(self.spec, time.time() + self._lease)
                try:
                    kernel = Kernel(sandbox, self._limits)
                    await kernel.start()
                    if self._warm_up is not None:
                        await _warm_up(kernel, self._warm_up, self._limits.start_timeout)
                except BaseException:
                    await sandbox.destroy()
                    raise
            if self._closed:
                await _discard(Warm(sandbox, kernel))
                return
            self._ready.append(Warm(sandbox, kernel))
            metrics.POOL_READY.labels(self.name).set(len(self._ready))
            self._filled.set()
        except Exception as exc:  # a failed start must not stop the pool; back off a little
            log.warning("warm pool: could not start a sandbox: %s", exc)
            await asyncio.sleep(1.0)
        finally:
            self._starting -= 1
            self._wake.set()

    def tick(self) -> None:
        """Re-check the target and renew the ready sandboxes' leases; the session reaper calls
        this periodically."""
        self._wake.set()
        # Every lease runs at least ``_lease`` from its start or from the last renewal.
        now = time.monotonic()
        if self._ready and now - self._renewed_at >= self._lease / 2:
            self._renewed_at = now
            self._spawn(self._renew([w.sandbox for w in self._ready]))

    async def _renew(self, sandboxes: list[Sandbox]) -> None:
        until = time.time() + self._lease
        for sandbox in sandboxes:
            try:
                await sandbox.set_deadline(until)
            except (errors.EngineError, OSError) as exc:
                log.warning("warm pool: could not renew sandbox %s: %s", sandbox.id, exc)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ready, self._ready = list(self._ready), deque()
        await asyncio.gather(*(_discard(w) for w in ready), return_exceptions=True)


async def _discard(warm: Warm) -> None:
    try:
        await warm.kernel.shutdown()
    finally:
        with contextlib.suppress(errors.EngineError):  # the backend retries a failed removal
            await warm.sandbox.destroy()


async def _warm_up(kernel: Kernel, code: str, timeout: float) -> None:
    result = await kernel.execute(code, timeout, internal=True)
    if result.error is not None:
        raise errors.KernelStartError(f"the pool's warm-up failed: {result.error.value}")
