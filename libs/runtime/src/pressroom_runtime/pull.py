"""Slot-bounded pulling from a durable JetStream consumer: a replica asks the server for exactly as many
messages as it has free slots, handles each in its own task, and keeps every held message alive.

Why not FastStream's pull subscriber with `max_workers`: it fetches more than it can hold (FastStream
issue #2563, fix PR #3091 unmerged in the 0.7.8 we pin); what it fetched and could not start waits,
its ack wait runs out and the server redelivers it to another replica, so the work is done twice.
nats-py's `PullSubscription.fetch(batch=n)` does not over-fetch, but holds the messages it already has
until the batch is full or the request expires, so a free slot waits seconds for its first message.

How: every pull request (`CONSUMER.MSG.NEXT`, batch = free slots, short expiry) has its own reply
inbox, subscribed for as long as the request lives. A slot is reserved when requested, held while its
message is handled, and given back when the handler ends or the request ends without filling it (the
server's 408/409 status, or the request's expiry passing without one, e.g. across a reconnect). So
held + requested never exceeds the slots, and the server's `num_ack_pending` for this replica never
does either.

`paused()` stops new requests (a dependency is down: keep what we have, fetch nothing more); a message
that still arrives on a request made before the pause is held, its handler started once it ends. `stop()`
stops requesting, lets the handlers finish within a grace period, cancels the rest and NAKs what
arrives meanwhile, so another replica picks it up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from .logs import get_logger
from .loops import cancel_requested
from .observability import ACK_PENDING, PENDING, SLOTS, SLOTS_IN_USE

log = get_logger(__name__)

Handle = Callable[[Msg], Awaitable[None]]

_HEARTBEAT = "100"


@dataclass
class _Request:
    remaining: int
    deadline: float
    sub: Subscription | None = None


class SlotPuller:
    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        durable: str,
        slots: int,
        handle: Handle,
        ack_wait: float = 30.0,
        expires: float = 5.0,
        lag_interval: float = 10.0,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        if slots < 1:
            raise ValueError("a consumer needs at least one slot")
        self.nc = nc
        self.stream = stream
        self.durable = durable
        self.slots = slots
        self.handle = handle
        self.ack_wait = ack_wait
        self.expires = expires
        self.lag_interval = lag_interval
        self.paused = paused
        self._free = slots  # neither requested nor held
        self._requests: dict[str, _Request] = {}
        self._held: dict[asyncio.Task[None], Msg] = {}
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._stopping = False
        self._quiet_until = 0.0  # after an unexpected status (409 …): no request for a moment
        self._next_id = 0
        self._inbox = nc.new_inbox()
        self._background: list[asyncio.Task[None]] = []
        self._unsubscribing: set[asyncio.Task[None]] = set()
        SLOTS.labels(durable).set(slots)

    @property
    def in_use(self) -> int:
        return len(self._held)

    def wake(self) -> None:
        """Look again whether a request can be made and held messages started (after a pause ends)."""
        self._wake.set()
        self._resumed.set()

    async def start(self) -> None:
        # The server's ack wait is the one that counts (an operator may have changed it): keep-alives
        # are paced on it.
        info = await self.nc.jetstream().consumer_info(self.stream, self.durable)
        self.ack_wait = info.config.ack_wait or self.ack_wait
        self._background = [
            asyncio.create_task(self._request_loop(), name=f"pull:{self.durable}"),
            asyncio.create_task(self._keep_alive(), name=f"keepalive:{self.durable}"),
            asyncio.create_task(self._watch_lag(), name=f"lag:{self.durable}"),
        ]

    async def stop(self, grace: float) -> None:
        """Stops requesting; in-flight handlers get `grace` seconds, then are cancelled (and NAKed)."""
        self._stopping = True
        self._wake.set()
        requesting, *watching = self._background  # keep-alives go on while the held messages finish
        requesting.cancel()
        await asyncio.gather(requesting, return_exceptions=True)
        if self._held:
            _, pending = await asyncio.wait(list(self._held), timeout=grace)
            if pending:
                log.warning("cancelling unfinished handlers", consumer=self.durable, count=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        for rid in list(self._requests):
            self._end_request(rid)
        SLOTS_IN_USE.labels(self.durable).set(0)

    # ---- requesting ---------------------------------------------------------------------------------------

    async def _request_loop(self) -> None:
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.durable}"
        expires_ns = int(self.expires * 1e9)
        while not self._stopping:
            self._expire_requests()
            ready = self._free > 0 and time.monotonic() >= self._quiet_until and self.nc.is_connected
            if ready and not self.paused():
                self._next_id += 1
                rid, inbox = str(self._next_id), f"{self._inbox}.{self._next_id}"
                batch, self._free = self._free, 0
                request = self._requests[rid] = _Request(batch, time.monotonic() + self.expires + 1.0)
                try:
                    request.sub = await self.nc.subscribe(inbox, cb=functools.partial(self._on_message, rid))
                    await self.nc.publish(
                        subject, json.dumps({"batch": batch, "expires": expires_ns}).encode(), reply=inbox
                    )
                except Exception as exc:  # disconnected for good, say: give the slots back, try later
                    log.warning("pull request failed", consumer=self.durable, error=str(exc))
                    self._end_request(rid)
                    await asyncio.sleep(1.0)
                    continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # Woken by a freed slot or a resumed pause; otherwise look again when a request expires.
                await asyncio.wait_for(self._wake.wait(), timeout=self.expires / 2)

    def _expire_requests(self) -> None:
        now = time.monotonic()
        for rid in [rid for rid, r in self._requests.items() if r.deadline < now]:
            self._end_request(rid)

    def _end_request(self, rid: str) -> None:
        request = self._requests.pop(rid, None)
        if request is None:
            return
        if request.sub is not None:
            task = asyncio.create_task(_unsubscribe(request.sub))
            self._unsubscribing.add(task)
            task.add_done_callback(self._unsubscribing.discard)
        if request.remaining:
            self._free += request.remaining
            self._wake.set()

    # ---- receiving ----------------------------------------------------------------------------------------

    async def _on_message(self, rid: str, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is not None:
            if status != _HEARTBEAT:
                if status not in ("404", "408"):  # no messages / expired: the normal ends
                    log.info("pull request ended", consumer=self.durable, status=status,
                             description=(msg.headers or {}).get("Description"))  # fmt: skip
                    self._quiet_until = time.monotonic() + 1.0
                self._end_request(rid)
            return
        if self._stopping:
            with contextlib.suppress(Exception):
                await msg.nak()  # to another replica, now
            return
        request = self._requests.get(rid)
        if request is not None:
            request.remaining -= 1
            if request.remaining <= 0:
                self._end_request(rid)  # filled: the server sends nothing more for it
        else:
            # Its request was given up on a moment ago (expired across a reconnect, say): handle it all
            # the same; no new request is made until the slots are free again.
            self._free -= 1
            log.debug("message for an ended pull request", consumer=self.durable)
        task = asyncio.create_task(self._run(msg))
        self._held[task] = msg
        SLOTS_IN_USE.labels(self.durable).set(len(self._held))

    async def _run(self, msg: Msg) -> None:
        try:
            try:
                while self.paused():  # arrived on a request made before a dependency went down
                    self._resumed.clear()
                    await self._resumed.wait()
            except asyncio.CancelledError:  # stopping before it started: to another replica, now
                with contextlib.suppress(Exception):
                    await msg.nak()
                raise
            await self.handle(msg)
        except Exception:  # the handler settles its own message; this is a bug in that code
            log.exception("message handler failed", consumer=self.durable)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._held.pop(task, None)
            self._free += 1
            SLOTS_IN_USE.labels(self.durable).set(len(self._held))
            self._wake.set()

    # ---- keeping alive and watching lag ---------------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Every held message says "still working" well within its ack wait."""
        while not cancel_requested():
            await asyncio.sleep(self.ack_wait / 3)
            for msg in list(self._held.values()):
                with contextlib.suppress(Exception):  # disconnected: the server keeps it pending anyway
                    await msg.in_progress()

    async def _watch_lag(self) -> None:
        """The consumer's backlog and unacknowledged count, for autoscaling on lag."""
        js = self.nc.jetstream()
        while not cancel_requested():
            try:
                info = await js.consumer_info(self.stream, self.durable)
                PENDING.labels(self.durable).set(info.num_pending or 0)
                ACK_PENDING.labels(self.durable).set(info.num_ack_pending or 0)
            except Exception as exc:
                log.debug("consumer info unavailable", consumer=self.durable, error=str(exc))
            await asyncio.sleep(self.lag_interval)


async def _unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):  # closed or reconnecting: the inbox dies with the connection
        await sub.unsubscribe()
