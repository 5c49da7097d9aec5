"""Garbage collection for long-running servers, set once a process has started.

CPython's defaults (700, 10, 10) run a young collection every 700 allocations and a full one whenever a
quarter more objects have survived. A gateway holding 10,000 WebSockets tracks millions of objects: under
fan-out it spent 29 % of its time collecting and stalled its loop ~1.8 s per full collection
(benchmarks/fanout.py, docs/operations.md). Larger thresholds make collections rarer; what start-up built
(modules, the app, settings) is frozen out of every later pass. Reference counting still frees acyclic
garbage at once; only cycles wait longer, and they are bounded by the same quarter rule.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
