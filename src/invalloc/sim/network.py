"""Compile a validated scenario into index arrays the simulator works on.

Everything the simulator touches per period is a numpy array over SKUs (the last axis),
so one event moves a whole vector of products. Shapes use these names:

- ``S`` SKUs, ``D`` DCs (locations), ``C`` channels, ``T`` tiers (over all channels);
- ``P`` purchase lanes (supplier → DC), ``X`` transfer lanes (DC → DC),
  ``A`` sales lanes (DC → channel).

Decision variables are named ``order/<supplier>/<dc>/<sku>``, ``transfer/<from>/<to>/<sku>``
and ``allocate/<dc>/<channel>/<sku>``, listed lane by lane in the scenario's lane order and
SKU by SKU in product order. A DC with a single sales lane has no allocation decision: all of
its stock serves that channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from invalloc.config.loader import LoadedScenario
from invalloc.config.schema import (
    DiscreteLeadTime,
    FixedLeadTime,
    Lane,
    Scenario,
    UniformLeadTime,
)


@dataclass(frozen=True)
class LeadTimeSampler:
    """Lead time in periods: fixed, or drawn per order from a small discrete distribution."""

    values: np.ndarray  # int, shape (k,)
    probabilities: np.ndarray  # float, shape (k,)

    @classmethod
    def from_config(cls, lead_time: object) -> LeadTimeSampler:
        if isinstance(lead_time, int):
            return cls(np.array([lead_time]), np.array([1.0]))
        if isinstance(lead_time, FixedLeadTime):
            return cls(np.array([lead_time.periods]), np.array([1.0]))
        if isinstance(lead_time, UniformLeadTime):
            values = np.arange(lead_time.low, lead_time.high + 1)
            return cls(values, np.full(len(values), 1.0 / len(values)))
        if isinstance(lead_time, DiscreteLeadTime):
            return cls(np.array(lead_time.values), np.array(lead_time.probabilities))
        raise TypeError(f"unknown lead time {lead_time!r}")

    @property
    def is_fixed(self) -> bool:
        return len(self.values) == 1

    @property
    def maximum(self) -> int:
        return int(self.values.max())

    @property
    def mean(self) -> float:
        return float(self.values @ self.probabilities)

    def draw(self, rng: np.random.Generator) -> int:
        if self.is_fixed:
            return int(self.values[0])
        # Inverse CDF on one uniform draw: a tenth of the cost of rng.choice(p=...).
        return self.value_at(rng.random())

    def value_at(self, uniform: float) -> int:
        """The lead time at ``uniform`` in [0, 1) on the inverse CDF (a random lane's draw)."""
        u = uniform * self._total
        for value, edge in zip(self._values, self._cumulative, strict=True):
            if u < edge:
                return value
        return self._values[-1]

    def __post_init__(self) -> None:
        cumulative = np.cumsum(self.probabilities).tolist()
        object.__setattr__(self, "_cumulative", cumulative)
        object.__setattr__(self, "_total", cumulative[-1])
        object.__setattr__(self, "_values", [int(v) for v in self.values])


def _per_sku(value: float | dict[str, float], skus: list[str], default: float = 0.0) -> np.ndarray:
    if isinstance(value, dict):
        return np.array([value.get(sku, default) for sku in skus], dtype=float)
    return np.full(len(skus), float(value))


def periods_for_days(days: int, period_days: int) -> int:
    """Payment terms in days → whole periods (a bill due mid-period is paid at that period's end)."""
    return math.ceil(days / period_days)


@dataclass
class Network:
    """Array view of a scenario (see the module docstring for the shape letters)."""

    loaded: LoadedScenario
    skus: list[str]
    locations: list[str]
    channels: list[str]
    suppliers: list[str]
    tiers: list[str]  # "channel/tier"
    # --- products, shape (S,) unless noted
    standard_cost: np.ndarray
    price: np.ndarray  # (C, S) channel price
    holding_cost: np.ndarray  # (D, S)
    shelf_life: np.ndarray  # periods, int; 0 = does not expire
    net_realisable_value: np.ndarray  # inf where not given
    integer_units: np.ndarray  # bool
    opening_stock: np.ndarray  # (D, S)
    location_capacity: np.ndarray  # (D,), inf = unlimited
    # --- tiers, shape (T,)
    tier_channel: np.ndarray
    tier_priority: np.ndarray
    tier_share: np.ndarray
    tier_min_fill_rate: np.ndarray
    tier_penalty: np.ndarray
    tier_price_multiplier: np.ndarray
    tier_order: np.ndarray  # tier indices, served first → last
    # --- purchase lanes, shape (P,) or (P, S)
    purchase_supplier: np.ndarray
    purchase_location: np.ndarray
    purchase_lead_time: list[LeadTimeSampler]
    purchase_shipping_cost: np.ndarray
    purchase_lane_capacity: np.ndarray  # inf = unlimited
    purchase_offered: np.ndarray  # (P, S) bool
    purchase_unit_cost: np.ndarray  # (P, S)
    purchase_moq: np.ndarray  # (P, S)
    purchase_fixed_cost: np.ndarray  # (P,)
    purchase_reliability: np.ndarray  # (P,)
    purchase_payment_periods: np.ndarray  # (P,)
    supplier_capacity: np.ndarray  # (number of suppliers, S), inf = unlimited
    # --- transfer lanes, shape (X,)
    transfer_source: np.ndarray
    transfer_destination: np.ndarray
    transfer_lead_time: list[LeadTimeSampler]
    transfer_shipping_cost: np.ndarray
    transfer_capacity: np.ndarray
    # --- sales lanes, shape (A,)
    sales_location: np.ndarray
    sales_channel: np.ndarray
    sales_lead_time: list[LeadTimeSampler]
    sales_shipping_cost: np.ndarray
    sales_capacity: np.ndarray
    sales_has_decision: np.ndarray  # bool
    channel_payment_periods: np.ndarray  # (C,)
    # --- rules
    channel_max_share: np.ndarray  # (C,), 1.0 = no limit
    reserve_quantity: np.ndarray  # (D, S)
    reserve_tiers: np.ndarray  # (D, T) bool: tier may consume the DC's reserve
    # --- decisions
    decision_names: list[str] = field(default_factory=list)
    #: For each decision block: (kind, lane index, SKU indices, slice into the flat vector).
    decision_blocks: list[tuple[str, int, np.ndarray, slice]] = field(default_factory=list)
    #: Per decision (n_decisions,): whole units? penalty per unit of it left unshipped (money).
    decision_integer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    decision_shortfall_penalty: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def scenario(self) -> Scenario:
        return self.loaded.scenario

    @property
    def n_skus(self) -> int:
        return len(self.skus)

    @property
    def n_decisions(self) -> int:
        return len(self.decision_names)

    @property
    def max_lead_time(self) -> int:
        samplers = self.purchase_lead_time + self.transfer_lead_time + self.sales_lead_time
        return max((s.maximum for s in samplers), default=0)

    def tier_price(self) -> np.ndarray:
        """Price per unit per tier and SKU, shape (T, S)."""
        return self.price[self.tier_channel] * self.tier_price_multiplier[:, None]


def _lane_kind(lane: Lane, suppliers: set[str], locations: set[str]) -> str:
    if lane.source in suppliers:
        return "purchase"
    if lane.destination in locations:
        return "transfer"
    return "sales"


def compile_network(loaded: LoadedScenario) -> Network:
    """Turn a validated scenario into a :class:`Network` of arrays."""
    sc = loaded.scenario
    skus = [p.id for p in sc.products]
    locations = [loc.id for loc in sc.locations]
    channels = [c.id for c in sc.channels]
    suppliers = [s.id for s in sc.suppliers]
    sku_index = {s: i for i, s in enumerate(skus)}
    location_index = {s: i for i, s in enumerate(locations)}
    channel_index = {s: i for i, s in enumerate(channels)}
    supplier_by_id = {s.id: s for s in sc.suppliers}
    n_skus = len(skus)
    finance = sc.finance
    period_days = sc.episode.period_days

    price = np.array([[p.price[c] if isinstance(p.price, dict) else p.price for p in sc.products] for c in channels])
    product_holding = np.array([p.holding_cost for p in sc.products])
    holding = np.array(
        [[(loc.holding_cost or {}).get(p.id, p.holding_cost) for p in sc.products] for loc in sc.locations]
    )
    del product_holding

    tiers, tier_channel, tier_priority, tier_share, tier_min, tier_penalty, tier_mult = [], [], [], [], [], [], []
    for c_index, channel in enumerate(sc.channels):
        for tier in channel.tiers:
            tiers.append(f"{channel.id}/{tier.id}")
            tier_channel.append(c_index)
            tier_priority.append(tier.priority)
            tier_share.append(tier.demand_share)
            tier_min.append(tier.min_fill_rate)
            tier_penalty.append(tier.penalty_per_unit_short)
            tier_mult.append(tier.price_multiplier)
    tier_priority_arr = np.array(tier_priority)
    # Stable sort keeps the scenario's order among tiers of equal priority.
    tier_order = np.argsort(tier_priority_arr, kind="stable")

    purchase, transfer, sales = [], [], []
    supplier_ids, location_ids = set(suppliers), set(locations)
    for lane_index, lane in enumerate(sc.lanes):
        {"purchase": purchase, "transfer": transfer, "sales": sales}[
            _lane_kind(lane, supplier_ids, location_ids)
        ].append((lane_index, lane))

    def capacity(value: float | None) -> float:
        return np.inf if value is None else float(value)

    p_offered = np.zeros((len(purchase), n_skus), dtype=bool)
    p_cost = np.zeros((len(purchase), n_skus))
    p_moq = np.zeros((len(purchase), n_skus))
    for row, (_, lane) in enumerate(purchase):
        for sku, item in supplier_by_id[lane.source].items.items():
            p_offered[row, sku_index[sku]] = True
            p_cost[row, sku_index[sku]] = item.unit_cost
            p_moq[row, sku_index[sku]] = item.minimum_order_quantity
    supplier_capacity = np.full((len(suppliers), n_skus), np.inf)
    for row, supplier in enumerate(sc.suppliers):
        for sku, item in supplier.items.items():
            supplier_capacity[row, sku_index[sku]] = capacity(item.capacity_per_period)

    sales_per_location = np.bincount([location_index[lane.source] for _, lane in sales], minlength=len(locations))

    max_share = np.ones(len(channels))
    rule_share = sc.rules.max_channel_share
    if isinstance(rule_share, dict):
        for channel, share in rule_share.items():
            max_share[channel_index[channel]] = share
    elif rule_share is not None:
        max_share[:] = rule_share

    reserve_quantity = np.zeros((len(locations), n_skus))
    reserve_tiers = np.zeros((len(locations), len(tiers)), dtype=bool)
    for reserve in sc.rules.reserve_stock:
        d = location_index[reserve.location]
        columns = list(range(n_skus)) if reserve.skus == "*" else [sku_index[s] for s in reserve.skus]
        reserve_quantity[d, columns] += reserve.quantity
        for name in reserve.tiers:
            for t_index, full_name in enumerate(tiers):
                if name in (full_name, full_name.split("/", 1)[1]):
                    reserve_tiers[d, t_index] = True

    network = Network(
        loaded=loaded,
        skus=skus,
        locations=locations,
        channels=channels,
        suppliers=suppliers,
        tiers=tiers,
        standard_cost=np.array([p.unit_cost for p in sc.products]),
        price=price,
        holding_cost=holding,
        shelf_life=np.array([p.shelf_life or 0 for p in sc.products], dtype=int),
        net_realisable_value=np.array(
            [np.inf if p.net_realisable_value is None else p.net_realisable_value for p in sc.products]
        ),
        integer_units=np.array([p.integer_units for p in sc.products]),
        opening_stock=np.array([_per_sku(loc.opening_stock, skus) for loc in sc.locations]),
        location_capacity=np.array([capacity(loc.capacity) for loc in sc.locations]),
        tier_channel=np.array(tier_channel, dtype=int),
        tier_priority=tier_priority_arr,
        tier_share=np.array(tier_share),
        tier_min_fill_rate=np.array(tier_min),
        tier_penalty=np.array(tier_penalty),
        tier_price_multiplier=np.array(tier_mult),
        tier_order=tier_order,
        purchase_supplier=np.array([suppliers.index(lane.source) for _, lane in purchase], dtype=int),
        purchase_location=np.array([location_index[lane.destination] for _, lane in purchase], dtype=int),
        purchase_lead_time=[LeadTimeSampler.from_config(lane.lead_time) for _, lane in purchase],
        purchase_shipping_cost=np.array([lane.cost_per_unit for _, lane in purchase]),
        purchase_lane_capacity=np.array([capacity(lane.capacity_per_period) for _, lane in purchase]),
        purchase_offered=p_offered,
        purchase_unit_cost=p_cost,
        purchase_moq=p_moq,
        purchase_fixed_cost=np.array([supplier_by_id[lane.source].fixed_order_cost for _, lane in purchase]),
        purchase_reliability=np.array([supplier_by_id[lane.source].reliability for _, lane in purchase]),
        purchase_payment_periods=np.array(
            [
                periods_for_days(
                    supplier_by_id[lane.source].payment_terms_days
                    if supplier_by_id[lane.source].payment_terms_days is not None
                    else finance.supplier_payment_terms_days,
                    period_days,
                )
                for _, lane in purchase
            ],
            dtype=int,
        ),
        supplier_capacity=supplier_capacity,
        transfer_source=np.array([location_index[lane.source] for _, lane in transfer], dtype=int),
        transfer_destination=np.array([location_index[lane.destination] for _, lane in transfer], dtype=int),
        transfer_lead_time=[LeadTimeSampler.from_config(lane.lead_time) for _, lane in transfer],
        transfer_shipping_cost=np.array([lane.cost_per_unit for _, lane in transfer]),
        transfer_capacity=np.array([capacity(lane.capacity_per_period) for _, lane in transfer]),
        sales_location=np.array([location_index[lane.source] for _, lane in sales], dtype=int),
        sales_channel=np.array([channel_index[lane.destination] for _, lane in sales], dtype=int),
        sales_lead_time=[LeadTimeSampler.from_config(lane.lead_time) for _, lane in sales],
        sales_shipping_cost=np.array([lane.cost_per_unit for _, lane in sales]),
        sales_capacity=np.array([capacity(lane.capacity_per_period) for _, lane in sales]),
        sales_has_decision=np.array(
            [sales_per_location[location_index[lane.source]] > 1 for _, lane in sales], dtype=bool
        ),
        channel_payment_periods=np.array(
            [
                periods_for_days(
                    c.payment_terms_days if c.payment_terms_days is not None else finance.customer_payment_terms_days,
                    period_days,
                )
                for c in sc.channels
            ],
            dtype=int,
        ),
        channel_max_share=max_share,
        reserve_quantity=reserve_quantity,
        reserve_tiers=reserve_tiers,
    )

    # Decision variables in lane order, then SKU order.
    names: list[str] = []
    blocks: list[tuple[str, int, np.ndarray, slice]] = []
    integer: list[bool] = []
    penalty: list[float] = []
    rows = {"purchase": 0, "transfer": 0, "sales": 0}
    for lane in sc.lanes:
        kind = _lane_kind(lane, supplier_ids, location_ids)
        row = rows[kind]
        rows[kind] += 1
        if kind == "purchase":
            columns = np.flatnonzero(p_offered[row])
            prefix, block_kind = "order", "order"
        elif kind == "transfer":
            columns = np.arange(n_skus)
            prefix, block_kind = "transfer", "transfer"
        else:
            if not network.sales_has_decision[row]:
                continue
            columns = np.arange(n_skus)
            prefix, block_kind = "allocate", "allocate"
        start = len(names)
        names += [f"{prefix}/{lane.source}/{lane.destination}/{skus[c]}" for c in columns]
        blocks.append((block_kind, row, columns, slice(start, len(names))))
        integer += [bool(network.integer_units[c]) for c in columns]
        penalty += [lane.shortfall_penalty_per_unit if block_kind != "allocate" else 0.0] * len(columns)
    network.decision_names = names
    network.decision_blocks = blocks
    network.decision_integer = np.array(integer, dtype=bool)
    network.decision_shortfall_penalty = np.array(penalty, dtype=float)
    return network
