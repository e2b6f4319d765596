"""The arrays the compiled steps share with Python, packed into structrefs.

:class:`EpisodeArrays` holds one episode's state (shared with the simulator, not copied)
and the network's constants the period steps read; :class:`RuleArrays` holds the
feasibility rules' constants, :class:`SourcingArrays` a rule policy's sourcing constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import cgutils, types
from numba.core.extending import intrinsic
from numba.experimental import structref

# --------------------------------------------------------------------------- packed arguments
# Every array passed to a compiled function from Python costs about 0.06 µs to type-check and
# unbox, and the simulator's six calls per period used to pass ~130 of them. The arrays are
# therefore packed into structrefs, the arrays shared with their Python owners, not copied:
# the feasibility rules' constants once per layer, the episode's state together with the
# network's constants once per reset. A structref argument itself costs ~0.6 µs (numba
# types it in Python), so each call takes at most one.


class PackedArraysType(types.StructRef):
    """A structref of arrays (and flags and numbers) packed for compiled code, its fields'
    literal types widened (one compiled signature whatever the values)."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


@structref.register
class _RuleArraysType(PackedArraysType):
    pass


@structref.register
class _EpisodeArraysType(PackedArraysType):
    pass


@structref.register
class _SourcingArraysType(PackedArraysType):
    pass


class RuleArrays(structref.StructRefProxy):
    """The network's constants the feasibility layer reads (see :data:`RULE_FIELDS`)."""


class EpisodeArrays(structref.StructRefProxy):
    """One episode's state arrays (shared with the simulator) and the network's constants the
    period steps read (see :data:`EPISODE_FIELDS`)."""


class SourcingArrays(structref.StructRefProxy):
    """A rule policy's sourcing constants (see :data:`SOURCING_FIELDS`)."""


NETWORK_FIELDS = (
    # suppliers (P lanes)
    "purchase_unit_cost",  # (P, S) money per unit
    "purchase_shipping_cost",  # (P,) money per unit
    "purchase_fixed_cost",  # (P,) money per order
    "purchase_location",  # (P,) destination DC
    "shelf_life",  # (S,) periods, 0 = never expires
    # transfers (X lanes)
    "transfer_source",  # (X,)
    "transfer_destination",  # (X,)
    "transfer_shipping_cost",  # (X,) money per unit
    # customers (T tiers, A sales lanes)
    "lost_sales",  # bool: unserved demand is lost (else backlogged)
    "contract_first",  # bool: contract minimums are served before priorities
    "tier_min_fill_rate",  # (T,) share
    "tier_penalty",  # (T,) money per unit short
    "sku_integer",  # (S,) bool: whole units
    "sales_has_decision",  # (A,) bool
    "sales_share",  # (A,) the lane channel's max share of the DC's stock
    "sales_capacity",  # (A,) units per period
    "reserve_quantity",  # (D, S) units
    "reserve_tiers",  # (D, T) bool
    "tier_order",  # (T,) service order
    "tier_channel",  # (T,)
    "lane_start",  # (C + 1,) start of each channel's lanes in lane_index
    "lane_index",  # (A,) sales lanes grouped by channel
    "sales_location",  # (A,) source DC
    "tier_price",  # (T, S) money per unit
    "sales_shipping_cost",  # (A,) money per unit
    # period close
    "holding_cost",  # (D, S) money per unit and period
    "interest_per_period",  # rate on credit used
    "perishable",  # bool
    "nrv_active",  # bool: lower of cost and NRV
    "net_realisable_value",  # (S,) money per unit
    "weighted_average",  # bool: cost method
)

RULE_FIELDS = (
    "kind",  # (n_decisions,) ORDER, TRANSFER or ALLOCATE
    "row",  # (n_decisions,) lane of the decision
    "column",  # (n_decisions,) SKU of the decision
    "block_start",  # (B + 1,) decisions in blocks of one kind and lane: block b is [block_start[b]:block_start[b + 1]]
    "block_kind",  # (B,) ORDER, TRANSFER or ALLOCATE
    "block_row",  # (B,) lane of the block
    "block_first_column",  # (B,) the block's first SKU where its SKUs are consecutive, else -1
    "decision_integer",  # (n_decisions,) bool: whole units
    "sku_integer",  # (S,) bool
    "reserve",  # (D, S) units
    "transfer_source",  # (X,)
    "transfer_destination",  # (X,)
    "transfer_capacity",  # (X,) units per period
    "purchase_location",  # (P,)
    "purchase_supplier",  # (P,)
    "purchase_capacity",  # (P,) units per period
    "supplier_capacity",  # (suppliers, S) units per period
    "location_capacity",  # (D,) units
    "unit_cost",  # (P, S) money per unit offered
    "fixed_cost",  # (P,) money per order
    "minimum_order",  # (P, S) units
    "approval_limit",  # money per order, inf = no approval rule
    "approval_delays",  # bool: orders above the limit wait rather than being capped
    "shortfall_penalty",  # (n_decisions,) money per unit not executed
)

EPISODE_FIELDS = NETWORK_FIELDS + (
    "on_hand",  # (D, S)
    "inbound",  # (D, S) units in transit to each DC
    "backlog",  # (T, S)
    "transit_units",  # (R, D, S)
    "transit_value",  # (R, D, S)
    "transit_expires",  # (R, D, S)
    "delivery_units",  # (R, D, S) on the way to customers
    "delivery_cost",  # (R, D, S)
    "delivery_revenue",  # (R, A)
    "flows_into",  # (D, S) cumulative units in, for the conservation invariant
    "flows_out",  # (D, S) cumulative units out
    "balance",  # ledger balances
    "period_start",  # ledger balances at the start of the period
    "layer_qty",  # (D, S, K) cost layers
    "layer_cost",  # (D, S, K)
    "layer_expires",  # (D, S, K)
    "layer_used",  # (D, S)
    "receipt_unit_cost",  # (D, S) scratch
    "invoices",  # (P,) scratch: supplier invoice per lane this period
    "transfer_value",  # (X, S) scratch: value per transfer lane this period
    "shipped",  # (A, T, S) scratch: units shipped per sales lane and tier
    "revenue_by_lane",  # (A,) scratch: revenue invoiced per sales lane
    "perishable_skus",  # (k,) int64: SKUs with a shelf life (the only ones whose layers expire)
    "nrv_skus",  # (k,) int64: SKUs whose NRV is not +inf (the only ones written down)
    "lane_tiers",  # (A, T) bool: sales lane a serves tier t's channel
    # suppliers' draws (:func:`invalloc.sim.kernels.suppliers.supply_orders`)
    "unreliable_lanes",  # (L,) int64: purchase lanes that may ship short
    "unreliable_reliability",  # (L,) probability that a unit arrives
    "reliability_rows",  # (L,) int64: their binomial inversion tables (draws.binomial_inversion_tables)
    "reliability_bounds",  # (L, N) int64
    "reliability_steps",  # (L, N, W)
    "partial_shipped",  # (P, S) scratch: units shipped when an unreliable lane ships short
    "partial_units",  # (L × S,) int64 scratch: units ordered, per drawn cell
    "partial_probabilities",  # (L × S,) scratch
    "partial_cells",  # (L × S,) int64 scratch: flat cells of partial_shipped
    "purchase_lead_fixed",  # (P,) int64: lead time where fixed (lead_times.lead_time_tables)
    "purchase_lead_random",  # (k,) int64: the lanes whose lead time is drawn
    "purchase_lead_values",  # int64: their inverse CDFs, flattened
    "purchase_lead_cumulative",
    "purchase_lead_first",  # int64
    "purchase_lead_total",
    "purchase_leads",  # (P,) int64 scratch: this period's lead time per purchase lane
    # money falling due (:mod:`invalloc.sim.kernels.dues`)
    "payable_due",  # (M,) int64: due period of each open supplier bill, in booking order
    "payable_amount",  # (M,) money
    "receivable_due",  # (M,) int64: due period of each open customer payment
    "receivable_amount",  # (M,) money
    "due_count",  # (2,) int64: open entries of each book (payables, receivables)
    "purchase_payment_periods",  # (P,) int64: periods from a supplier's invoice to its payment
    "lane_payment_periods",  # (A,) int64: periods from a sales lane's invoice to the customer's payment
    # purchase orders held for approval, by release period modulo the delay + 1 (a ring)
    "held_orders",  # (Q, P, S) units
    "held_value",  # (Q,) money (rules.order_value_packed)
    "held_release",  # (Q,) int64: the slot's release period, -1 when empty
    "no_release",  # (P, S) zeros: nothing released this period
    "released_orders",  # (P, S) scratch: this period's orders with the released ones added
    "rules",  # RuleArrays: the feasibility layer's constants (for the decision point)
)

#: What a rule policy's sourcing step (:func:`invalloc.sim.kernels.sourcing.plan_sources`) reads
#: of the network: its limits, then the options (lanes ranked per DC × SKU) flattened as
#: :mod:`invalloc.sim.kernels.sourcing` describes.
SOURCING_FIELDS = (
    "lane_capacity",  # (P,) units per period
    "supplier_capacity",  # (suppliers, S) units per period
    "purchase_supplier",  # (P,)
    "purchase_location",  # (P,)
    "transfer_capacity",  # (X,) units per period
    "reserve",  # (D, S) units
    "location_capacity",  # (D,) units
    "rank_start",  # (ranks + 1,) options of each rank
    "kind",  # (options,) ORDER or TRANSFER
    "lane",  # (options,)
    "location",  # (options,) destination DC
    "owner",  # (options,) source DC of a transfer, supplier of an order
    "cell_start",  # (options + 1,) cells of each option
    "skus",  # (cells,)
    "positions",  # (cells,) decision index
    "unit_cost",  # (cells,) money per unit (0 for transfers)
    "moq_floor",  # (cells,) minimum order − 1e-9, units (0 for transfers)
    "rank_transfers",  # (ranks,) bool: the rank has a transfer option
    "rank_orders",  # (ranks,) bool: the rank has an order option
    "integer",  # (S,) bool: whole units
    "fixed_cost",  # (P,) money per order
    "approval_limit",  # money per order, inf = no approval rule
    "any_supplier_limit",  # bool
    "any_storage_limit",  # bool
)

structref.define_proxy(RuleArrays, _RuleArraysType, list(RULE_FIELDS))
structref.define_proxy(EpisodeArrays, _EpisodeArraysType, list(EPISODE_FIELDS))
structref.define_proxy(SourcingArrays, _SourcingArraysType, list(SOURCING_FIELDS))


def _packable(value):
    """Arrays C-contiguous (one compiled signature for every scenario), flags as bool, money as
    float; packed rule constants as they are."""
    if isinstance(value, RuleArrays):
        return value
    if isinstance(value, np.ndarray):
        return value if value.flags.c_contiguous else np.ascontiguousarray(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return float(value)


def packable(fields, values: dict) -> tuple:
    """``values`` for exactly ``fields``, in field order, ready to pack (see :func:`_packable`)."""
    if set(values) != set(fields):
        missing, extra = set(fields) - set(values), set(values) - set(fields)
        raise TypeError(f"missing {sorted(missing)}, unexpected {sorted(extra)}")
    return tuple(_packable(values[name]) for name in fields)


# --------------------------------------------------------------------------- borrowed arrays
# Compiled code counts its references to an array in the array's "meminfo", with an atomic
# add: every field a kernel reads from a structref, every row view it takes (``on_hand[d]``)
# and every array it passes on costs an atomic increment and decrement (about a thousand a
# period on the retail scenario, a tenth of the environment's step). The packed arrays are
# owned by Python (the simulator, the feasibility layer, the planner), so the structrefs hold
# them *borrowed*: without a meminfo, which numba's reference counting then skips. The proxy
# keeps its Python arrays alive (``_owners``), and no kernel hands a packed array back to Python.


@intrinsic
def borrowed(typingctx, fields):
    """``fields`` (a tuple) with every array's meminfo and parent cleared: a view of the same
    memory that compiled code does not count references to (its owner keeps it alive)."""
    if not isinstance(fields, types.BaseTuple):
        return None

    def codegen(context, builder, signature, args):
        (packed,) = args
        values = []
        for i, kind in enumerate(signature.args[0]):
            value = builder.extract_value(packed, i)
            if isinstance(kind, types.Array):
                array = context.make_array(kind)(context, builder, value=value)
                array.meminfo = cgutils.get_null_value(array.meminfo.type)
                array.parent = cgutils.get_null_value(array.parent.type)
                value = array._getvalue()
            else:  # returned as a new reference, as intrinsics return values
                context.nrt.incref(builder, kind, value)
            values.append(value)
        return context.make_tuple(builder, signature.return_type, values)

    return fields(fields), codegen


# Packed by compiled functions kept in numba's cache: the proxies' own constructors are
# compiled afresh in every process (seconds for sixty fields).
@njit(cache=True, nogil=True)
def _new_rule_arrays(*fields):
    return RuleArrays(*borrowed(fields))


@njit(cache=True, nogil=True)
def _new_episode_arrays(*fields):
    return EpisodeArrays(*borrowed(fields))


@njit(cache=True, nogil=True)
def _new_sourcing_arrays(*fields):
    return SourcingArrays(*borrowed(fields))


def owning(packed, fields: tuple):
    """``packed``, keeping the Python arrays it borrows (``fields``) alive as long as it lives."""
    packed._owners = fields
    return packed


def pack_rules(fields: tuple) -> RuleArrays:
    """:class:`RuleArrays` of ``fields`` (:func:`packable` values in :data:`RULE_FIELDS` order)."""
    return owning(_new_rule_arrays(*fields), fields)


def pack_episode(fields: tuple) -> EpisodeArrays:
    """:class:`EpisodeArrays` of ``fields`` (in :data:`EPISODE_FIELDS` order, packable as they are)."""
    return owning(_new_episode_arrays(*fields), fields)


def pack_sourcing(fields: tuple) -> SourcingArrays:
    """:class:`SourcingArrays` of ``fields`` (:func:`packable` values in :data:`SOURCING_FIELDS` order)."""
    return owning(_new_sourcing_arrays(*fields), fields)
