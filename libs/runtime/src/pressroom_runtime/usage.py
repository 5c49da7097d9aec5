"""Recording what provider calls cost, as they happen: the one helper every stage uses.

A call is metered from its start: its running totals are published as `usage.recorded` every few
seconds while it runs, and once more when it ends (with the provider's own count when it gives one).
Reports of one call carry the same `call` name and a rising `report` number, so each is stored once
(its de-duplication key) and persistence keeps the highest: a crash mid-call leaves the cost of what was
streamed so far on the record instead of nothing.

A call's name is made unique per payment: when the same input is handled again — a redelivery after a
crash, or another try after an outage — the delivery and the try are appended (`blog:1#2.1`), so a call
that is paid again is counted again, and a report that is merely published again is not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType

from pressroom_contracts.events import Stage, UsageRecorded

from .logs import get_logger
from .loops import cancel_requested
from .pricing import estimate_cost

log = get_logger(__name__)

Report = Callable[[UsageRecorded], Awaitable[object]]


def call_name(call: str, attempt: int, run: int) -> str:
    """`call` on the first try of the first delivery; `call#<delivery>.<try>` on any other."""
    return call if (attempt, run) == (1, 1) else f"{call}#{attempt}.{run}"


class Meter:
    """The running usage of one provider call. `add()` what it used as it goes; use it as an async
    context manager: reports are published every `interval` seconds while it is open and when it closes."""

    def __init__(
        self, report: Report, *, stage: Stage, call: str, provider: str, model: str, interval: float
    ) -> None:
        self._publish = report
        self.stage = stage
        self.call = call
        self.provider = provider
        self.model = model
        self.interval = interval
        self.input_tokens = 0
        self.output_tokens = 0
        self.images = 0
        self.calls = 0
        self._reports = 0
        self._reported: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def add(self, input_tokens: int = 0, output_tokens: int = 0, images: int = 0, calls: int = 0) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.images += images
        self.calls += calls

    async def report(self) -> None:
        """Publishes the totals so far, unless nothing changed since the last report."""
        async with self._lock:
            totals = (self.input_tokens, self.output_tokens, self.images, self.calls)
            if totals == self._reported:
                return
            self._reports += 1
            await self._publish(
                UsageRecorded(
                    stage=self.stage,
                    call=self.call,
                    report=self._reports,
                    provider=self.provider,
                    model=self.model,
                    input_tokens=self.input_tokens,
                    output_tokens=self.output_tokens,
                    images=self.images,
                    cost_usd=estimate_cost(self.model, *totals),
                )
            )
            self._reported = totals

    async def _tick(self) -> None:
        while not cancel_requested():
            await asyncio.sleep(self.interval)
            try:
                await self.report()
            except Exception as exc:  # the bus is away: the next report (or the last) carries it
                log.warning(
                    "running usage not reported", call=self.call, error=f"{type(exc).__name__}: {exc}"
                )

    async def __aenter__(self) -> Meter:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if exc is None:
            await self.report()
            return
        # The call failed half way: what it used is still paid for. Best effort, never masking `exc`.
        try:
            await self.report()
        except Exception as error:
            log.warning("usage of a failed call not reported", call=self.call, error=str(error))
