"""CPU-bound work off the event loop: the one helper stages use for it (the cover renderer, PDF parsing,
BM25 indexing and search).

A replica works on many messages at once on one event loop; a render or an index build run on it would
stall every other message (and their in_progress keep-alives) for as long as it takes. `off_loop` runs
the function in a worker thread instead, at most one per CPU core at a time, so a burst of jobs queues
for the cores instead of oversubscribing them. Threads rather than processes: Pillow, zlib and numpy
release the GIL for their heavy parts, and nothing needs pickling.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple, Unpack

T = TypeVar("T")
Args = TypeVarTuple("Args")

_cores = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="cpu-bound")


async def off_loop(function: Callable[[Unpack[Args]], T], *args: *Args) -> T:
    """`function(*args)` in a worker thread, the event loop free meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_cores, function, *args)
