"""Garbage collection for long-running servers, set once a process has started.

CPython's defaults (700, 10, 10) run a young collection every 700 allocations and a full one whenever a
quarter more objects have survived. A gateway holding 10,000 WebSockets tracks millions of objects: under
fan-out it spent 29 % of its time collecting and stalled its loop ~1.8 s per full collection
(benchmarks/fanout.py, docs/operations.md). A larger young generation makes collections rarer; a middle
generation collected every 5 young passes stays small, so its pause does too (0.44 → 0.15 s while 10,000
clients connect); what start-up built (modules, the app, settings) is frozen out of every later pass.
Reference counting still frees acyclic garbage at once; only cycles wait longer, and they are bounded by
the same quarter rule.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 5, 100)


def tune() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
