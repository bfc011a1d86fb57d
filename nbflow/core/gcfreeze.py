"""Keeping the cyclic garbage collector off the objects a run was built from.

A run allocates tuples and dicts per event, so the collector runs often, and
each full pass walks every object in the process: the graph, the specs and
everything else the kernel holds.  Freezing what exists when a run starts
(``gc.freeze``) takes those objects out of the collector's view until the last
concurrent run ends; what the run creates is collected as usual.  On the
layered benchmark (10,000 tasks) time in the collector fell from 0.14-0.24 s
to 0.06-0.10 s per run (``benchmarks/README.md``).
"""

from __future__ import annotations

import gc

from .scoped import WhileAny

#: ``with frozen():`` keeps pre-existing objects frozen while any run is inside.
frozen = WhileAny(gc.freeze, gc.unfreeze)
