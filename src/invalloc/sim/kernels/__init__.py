"""Compiled inner loops of the simulator (numba), one module per business step of a period.

The simulator sits inside the RL training loop, where numpy's per-call overhead on small
arrays would dominate: each step below is one compiled call that walks a whole DC × SKU
array in place. In the order of a period (:mod:`invalloc.sim.simulator`):

- :mod:`~invalloc.sim.kernels.decision_point`: the period's books opened, the request
  projected onto the feasible set (:mod:`~invalloc.sim.kernels.rules`) and the transfers
  sent (:mod:`~invalloc.sim.kernels.transfers`);
- :mod:`~invalloc.sim.kernels.suppliers`: purchase orders shipped, invoices booked;
- :mod:`~invalloc.sim.kernels.receiving`: arrivals put away into cost layers;
- :mod:`~invalloc.sim.kernels.customers`: demand served, goods shipped, delivered and invoiced;
- :mod:`~invalloc.sim.kernels.period_close`: settlements, holding cost, interest, expiry, NRV;

with :mod:`~invalloc.sim.kernels.episode` (an episode's start and its demand,
:mod:`~invalloc.sim.kernels.demand`), a rule policy's planning (:mod:`~invalloc.sim.kernels.sourcing`:
sourcing over inbound lanes and the open allocation), the books they all post to
(:mod:`~invalloc.sim.kernels.ledger`, :mod:`~invalloc.sim.kernels.cost_layers`) and the
packed arguments (:mod:`~invalloc.sim.kernels.packing`).

Shapes follow :mod:`invalloc.sim.network` (``D`` DCs, ``S`` SKUs, ``K`` cost-layer slots,
``T`` tiers, ``A`` sales lanes, ``L`` lanes of one kind, ``R`` ring slots of goods in
transit, indexed by arrival period modulo ``R``). Quantities are units, money is currency;
``NEVER`` marks units that do not expire.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from numba.core import event

from invalloc.sim.kernels.cost_layers import (
    NEVER,
    expire_layers,
    fifo_issue,
    issue_outbound,
    receive_layers,
    write_down_layers,
)
from invalloc.sim.kernels.customers import serve_period
from invalloc.sim.kernels.decision_point import decision_point
from invalloc.sim.kernels.draws import binomial_inversion_tables, state_words
from invalloc.sim.kernels.dues import bills_and_headroom, due_before, money_outlook
from invalloc.sim.kernels.episode import any_nonzero, any_nonzero_rows, reset_episode
from invalloc.sim.kernels.ledger import post
from invalloc.sim.kernels.packing import (
    EPISODE_FIELDS,
    NETWORK_FIELDS,
    RULE_FIELDS,
    EpisodeArrays,
    RuleArrays,
    pack_episode,
    pack_rules,
    packable,
)
from invalloc.sim.kernels.period import N_FIGURES, run_period
from invalloc.sim.kernels.period_close import close_books, close_period
from invalloc.sim.kernels.receiving import put_away, receive_arrivals
from invalloc.sim.kernels.rules import (
    ALLOCATE,
    ORDER,
    TRANSFER,
    limit_allocations,
    order_value_packed,
    project,
    project_packed,
    record_allocations,
)
from invalloc.sim.kernels.suppliers import (
    draw_shipped_units,
    partial_shipments,
    release_orders,
    ship_orders,
    ship_purchases,
    supply_orders,
)
from invalloc.sim.kernels.transfers import dispatch_transfers, send_transfers

__all__ = [
    "ALLOCATE",
    "N_FIGURES",
    "EPISODE_FIELDS",
    "NETWORK_FIELDS",
    "NEVER",
    "ORDER",
    "RULE_FIELDS",
    "TRANSFER",
    "EpisodeArrays",
    "RuleArrays",
    "any_nonzero",
    "any_nonzero_rows",
    "bills_and_headroom",
    "binomial_inversion_tables",
    "close_books",
    "close_period",
    "decision_point",
    "dispatch_transfers",
    "due_before",
    "draw_shipped_units",
    "expire_layers",
    "fifo_issue",
    "issue_outbound",
    "limit_allocations",
    "money_outlook",
    "order_value_packed",
    "pack_episode",
    "pack_rules",
    "packable",
    "partial_shipments",
    "post",
    "project",
    "project_packed",
    "put_away",
    "receive_arrivals",
    "receive_layers",
    "record_allocations",
    "release_orders",
    "reset_episode",
    "run_period",
    "send_transfers",
    "serve_period",
    "supply_orders",
    "ship_orders",
    "ship_purchases",
    "state_words",
    "write_down_layers",
]


def _drop_stale_caches() -> None:
    """Forget every compiled kernel when any kernel module's source changed.

    numba checks a cached function against its own file only, but a kernel is compiled into
    its callers in other modules (``post`` into every step): after an edit to ``ledger.py``
    the callers' cached code would still run the old ``post``. So a digest of all kernel
    modules is kept beside the cache, and when it no longer matches, the cache indexes of the
    package are removed and numba compiles afresh. Best effort: an unwritable cache is left.
    """
    try:
        sources = sorted(Path(__file__).parent.glob("*.py"))
        digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
        cache = Path(decision_point._cache.cache_path)  # numba's cache folder for this package
        stamp = cache / "invalloc-kernels.sha256"
        if stamp.is_file() and stamp.read_text() == digest:
            return
        stems = {path.stem for path in sources}
        for index in cache.glob("*.nbi"):
            if index.name.split(".", 1)[0] in stems:
                index.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"{stamp.name}.{os.getpid()}"
        partial.write_text(digest)
        partial.replace(stamp)
    except (OSError, AttributeError):
        pass


_drop_stale_caches()


#: Printed on stderr when a process starts compiling the kernels (no usable cached copy).
COMPILE_NOTICE = "compiling simulator kernels (first run only, a minute or two)…"


class _CompileNotice(event.Listener):
    """Prints :data:`COMPILE_NOTICE` once per process when numba starts compiling one of the
    project's kernels: numba raises that event only when its cache had no usable copy, so a
    warm cache prints nothing."""

    def __init__(self) -> None:
        self.shown = False

    def on_start(self, event: event.Event) -> None:
        if self.shown:
            return
        function = getattr(event.data.get("dispatcher"), "py_func", None)
        if (getattr(function, "__module__", None) or "").startswith("invalloc."):
            self.shown = True
            print(COMPILE_NOTICE, file=sys.stderr, flush=True)

    def on_end(self, event: event.Event) -> None:
        pass


event.register("numba:compile", _CompileNotice())
