"""Cross-field checks on a scenario that type validation alone cannot express.

Each check returns ``"yaml.path: message"`` lines; :func:`cross_checks` gathers all of them
so that a user sees every problem in one go. A check flags a scenario that contradicts
itself or that sets something the simulator would silently ignore; it does not judge
whether a scenario is a good idea.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from invalloc.config.schema import (
    Demand,
    DiscreteLeadTime,
    Location,
    Scenario,
    UniformLeadTime,
)
from invalloc.config.trace import read_history, read_trace

#: Most values (see :func:`episode_values`) an episode's arrays may hold (400 MB of float64 each).
MAX_EPISODE_VALUES = 50_000_000


class _Index:
    """Ids of a scenario and where each is first defined."""

    def __init__(self, scenario: Scenario):
        self.products = {p.id: i for i, p in reversed(list(enumerate(scenario.products)))}
        self.suppliers = {s.id: i for i, s in reversed(list(enumerate(scenario.suppliers)))}
        self.locations = {loc.id: i for i, loc in reversed(list(enumerate(scenario.locations)))}
        self.channels = {c.id: i for i, c in reversed(list(enumerate(scenario.channels)))}
        self.integer = {p.id: p.integer_units for p in scenario.products}
        #: tier id → channel ids having a tier of that id
        self.tier_channels: dict[str, set[str]] = defaultdict(set)
        for channel in scenario.channels:
            for tier in channel.tiers:
                self.tier_channels[tier.id].add(channel.id)
        #: location id → channel ids it has a lane to
        self.serves: dict[str, set[str]] = defaultdict(set)
        for lane in scenario.lanes:
            if lane.source in self.locations and lane.destination in self.channels:
                self.serves[lane.source].add(lane.destination)

    def sku_list(self, skus: str | list[str]) -> list[str]:
        return list(self.products) if skus == "*" else list(skus)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _check_ids(scenario: Scenario) -> list[str]:
    problems = []
    for section in ("products", "suppliers", "locations", "channels"):
        first: dict[str, int] = {}
        for index, item in enumerate(getattr(scenario, section)):
            if item.id in first:
                problems.append(
                    f"{section}[{index}].id: '{item.id}' is already the id of {section}[{first[item.id]}]; "
                    "ids must be unique"
                )
            else:
                first[item.id] = index
    owner: dict[str, str] = {}
    for section in ("suppliers", "locations", "channels"):
        seen_here: set[str] = set()
        for index, item in enumerate(getattr(scenario, section)):
            if item.id in owner and item.id not in seen_here:
                problems.append(
                    f"{section}[{index}].id: '{item.id}' is also the id of {owner[item.id]}; suppliers, "
                    "locations and channels share one name space because lanes name them"
                )
            owner.setdefault(item.id, f"{section}[{index}]")
            seen_here.add(item.id)
    for index, channel in enumerate(scenario.channels):
        first_tier: dict[str, int] = {}
        for tier_index, tier in enumerate(channel.tiers):
            if tier.id in first_tier:
                problems.append(
                    f"channels[{index}].tiers[{tier_index}].id: tier '{tier.id}' is already "
                    f"channels[{index}].tiers[{first_tier[tier.id]}]"
                )
            else:
                first_tier[tier.id] = tier_index
        total_share = sum(t.demand_share for t in channel.tiers)
        if not math.isclose(total_share, 1.0, abs_tol=1e-9):
            problems.append(f"channels[{index}].tiers: demand_share sums to {total_share:g}, not 1; adjust the shares")
    return problems


def _check_products(scenario: Scenario, index: _Index) -> list[str]:
    problems = []
    offered = {sku for supplier in scenario.suppliers for sku in supplier.items}
    for i, product in enumerate(scenario.products):
        path = f"products[{i}]"
        if isinstance(product.price, dict):
            for channel in product.price:
                if channel not in index.channels:
                    problems.append(f"{path}.price.{channel}: no such channel (channels: {', '.join(index.channels)})")
            for channel in index.channels:
                if channel not in product.price:
                    problems.append(f"{path}.price: no price for channel '{channel}'")
        if product.id not in offered:
            problems.append(
                f"{path}: no supplier offers '{product.id}', so it could never be replenished; "
                "add it to a supplier's items"
            )
        if product.net_realisable_value is not None:
            highest = 0.0
            for channel in scenario.channels:
                price = product.price.get(channel.id, 0.0) if isinstance(product.price, dict) else product.price
                highest = max(highest, price * max(t.price_multiplier for t in channel.tiers))
            if product.net_realisable_value > highest + 1e-9:
                problems.append(
                    f"{path}.net_realisable_value: {_fmt(product.net_realisable_value)} is above the highest "
                    f"price it can sell at ({_fmt(highest)}); NRV is a selling price less costs to sell"
                )
    return problems


def _per_sku(value: float | dict[str, float], skus: list[str]) -> dict[str, float]:
    return dict(value) if isinstance(value, dict) else {sku: value for sku in skus}


def _check_locations(scenario: Scenario, index: _Index) -> list[str]:
    problems = []
    for i, location in enumerate(scenario.locations):
        path = f"locations[{i}]"
        opening = _per_sku(location.opening_stock, list(index.products))
        if isinstance(location.opening_stock, dict):
            for sku in location.opening_stock:
                if sku not in index.products:
                    problems.append(f"{path}.opening_stock.{sku}: no such product")
        for sku, quantity in opening.items():
            if index.integer.get(sku) and not float(quantity).is_integer():
                where = (
                    f"{path}.opening_stock.{sku}"
                    if isinstance(location.opening_stock, dict)
                    else (f"{path}.opening_stock")
                )
                problems.append(f"{where}: {_fmt(quantity)} is not a whole number but '{sku}' has integer_units")
        for sku in location.holding_cost or {}:
            if sku not in index.products:
                problems.append(f"{path}.holding_cost.{sku}: no such product")
        if location.capacity is not None:
            total = sum(q for sku, q in opening.items() if sku in index.products)
            if total > location.capacity + 1e-9:
                problems.append(
                    f"{path}.opening_stock: {_fmt(total)} units exceed the capacity of {_fmt(location.capacity)}"
                )
    return problems


def _check_suppliers(scenario: Scenario, index: _Index) -> list[str]:
    problems = []
    for i, supplier in enumerate(scenario.suppliers):
        path = f"suppliers[{i}]"
        lanes = [lane for lane in scenario.lanes if lane.source == supplier.id]
        if not lanes:
            problems.append(f"{path}: no lane leaves supplier '{supplier.id}'; add a lane to a location")
        lane_caps = [lane.capacity_per_period for lane in lanes]
        widest = None if not lane_caps or None in lane_caps else max(c for c in lane_caps if c is not None)
        for sku, item in supplier.items.items():
            if sku not in index.products:
                problems.append(f"{path}.items.{sku}: no such product")
            if item.capacity_per_period == 0:
                problems.append(
                    f"{path}.items.{sku}.capacity_per_period: 0 means nothing can ever be bought; "
                    "remove the item, or leave the key out for no limit"
                )
            elif item.capacity_per_period is not None and item.capacity_per_period < item.minimum_order_quantity:
                problems.append(
                    f"{path}.items.{sku}.capacity_per_period: {_fmt(item.capacity_per_period)} is below the "
                    f"minimum_order_quantity {_fmt(item.minimum_order_quantity)}; no order could be placed"
                )
            if widest is not None and item.minimum_order_quantity > widest:
                problems.append(
                    f"{path}.items.{sku}.minimum_order_quantity: {_fmt(item.minimum_order_quantity)} "
                    f"is above the capacity of every lane from '{supplier.id}' ({_fmt(widest)} per period)"
                )
    return problems


def _lead_time_problems(path: str, lead_time: object) -> list[str]:
    if isinstance(lead_time, UniformLeadTime) and lead_time.low > lead_time.high:
        return [f"{path}.low: {lead_time.low} is above high {lead_time.high}; swap them"]
    if isinstance(lead_time, DiscreteLeadTime):
        if len(lead_time.values) != len(lead_time.probabilities):
            return [
                f"{path}.probabilities: {len(lead_time.probabilities)} probabilities for "
                f"{len(lead_time.values)} values; give one per value"
            ]
        total = sum(lead_time.probabilities)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            return [f"{path}.probabilities: sum to {total:g}, not 1"]
    return []


def _check_lanes(scenario: Scenario, index: _Index) -> list[str]:
    problems = []
    seen: dict[tuple[str, str], int] = {}
    nodes = set(index.suppliers) | set(index.locations) | set(index.channels)
    for i, lane in enumerate(scenario.lanes):
        path = f"lanes[{i}]"
        if lane.source not in nodes:
            problems.append(f"{path}.from: no supplier or location '{lane.source}'")
        elif lane.source in index.channels:
            problems.append(f"{path}.from: a lane cannot start at channel '{lane.source}'; channels only receive stock")
        if lane.destination not in nodes:
            problems.append(f"{path}.to: no location or channel '{lane.destination}'")
        elif lane.destination in index.suppliers:
            problems.append(f"{path}.to: a lane cannot end at supplier '{lane.destination}'")
        if lane.source in index.suppliers and lane.destination in index.channels:
            problems.append(
                f"{path}.to: suppliers ship to locations, not straight to channel '{lane.destination}'; "
                "route it through a location"
            )
        if lane.source == lane.destination:
            problems.append(f"{path}: a lane from '{lane.source}' to itself")
        key = (lane.source, lane.destination)
        if key in seen:
            problems.append(f"{path}: duplicate of lanes[{seen[key]}] ({lane.source} → {lane.destination})")
        else:
            seen[key] = i
        if lane.capacity_per_period == 0:
            problems.append(f"{path}.capacity_per_period: 0 means nothing can ever move; remove the lane")
        if lane.shortfall_penalty_per_unit > 0 and lane.destination in index.channels:
            problems.append(
                f"{path}.shortfall_penalty_per_unit: applies to replenishment lanes only; a shortage at "
                f"channel '{lane.destination}' is charged by its tiers' penalty_per_unit_short"
            )
        problems += _lead_time_problems(f"{path}.lead_time", lane.lead_time)
    for i, channel in enumerate(scenario.channels):
        if not any(channel.id in served for served in index.serves.values()):
            problems.append(f"channels[{i}]: no lane from a location serves channel '{channel.id}'")
    # Locations must be reachable from a supplier through lanes between stocking nodes.
    inbound = {
        lane.destination for lane in scenario.lanes if lane.source in set(index.suppliers) | set(index.locations)
    }
    reached = set(index.suppliers)
    frontier = list(reached)
    while frontier:
        node = frontier.pop()
        for lane in scenario.lanes:
            if lane.source == node and lane.destination in index.locations and lane.destination not in reached:
                reached.add(lane.destination)
                frontier.append(lane.destination)
    for i, location in enumerate(scenario.locations):
        if location.id not in inbound:
            problems.append(f"locations[{i}]: no lane supplies location '{location.id}'")
        elif location.id not in reached:
            problems.append(f"locations[{i}]: no chain of lanes from a supplier reaches location '{location.id}'")
    return problems


def _check_trace(scenario: Scenario, index: _Index, path: Path) -> list[str]:
    _, problems = read_trace(path, list(index.channels), list(index.products), scenario.episode.horizon)
    return [
        f"demand.trace: {problem}" if problem.startswith(("row ", "...")) else f"demand.trace: '{path.name}' {problem}"
        for problem in problems
    ]


def _check_bootstrap(demand: Demand, index: _Index, base_dir: Path) -> list[str]:
    """The bootstrap replaces the streams and the scenario's trace; its history must read and be
    at least one block long."""
    bootstrap = demand.bootstrap
    problems = []
    if demand.streams:
        problems.append("demand.bootstrap: a bootstrap replaces the streams; remove demand.streams or the bootstrap")
    if demand.trace is not None:
        problems.append("demand.bootstrap: a bootstrap replaces the trace; remove demand.trace or the bootstrap")
    path = base_dir / bootstrap.history
    if not path.is_file():
        return problems + [f"demand.bootstrap.history: file '{bootstrap.history}' not found (relative to {base_dir})"]
    history, read_problems = read_history(path, list(index.channels), list(index.products))
    problems += [
        f"demand.bootstrap.history: {p}"
        if p.startswith(("row ", "..."))
        else f"demand.bootstrap.history: '{path.name}' {p}"
        for p in read_problems
    ]
    if history is not None and bootstrap.block_periods > history.shape[0]:
        problems.append(
            f"demand.bootstrap.block_periods: {bootstrap.block_periods} is longer than the history's "
            f"{history.shape[0]} periods; use at most {history.shape[0]}"
        )
    return problems


def _check_demand(scenario: Scenario, index: _Index, base_dir: Path) -> list[str]:
    problems = []
    demand = scenario.demand
    if not demand.streams and demand.trace is None and demand.bootstrap is None:
        problems.append("demand: give streams, a trace or a bootstrap")
    if demand.bootstrap is not None:
        problems += _check_bootstrap(demand, index, base_dir)
    if demand.trace is not None:
        trace_path = base_dir / demand.trace
        if not trace_path.is_file():
            problems.append(f"demand.trace: file '{demand.trace}' not found (relative to {base_dir})")
        else:
            problems += _check_trace(scenario, index, trace_path)
    for i, stream in enumerate(demand.streams):
        path = f"demand.streams[{i}]"
        if stream.channel not in index.channels:
            problems.append(f"{path}.channel: no such channel '{stream.channel}'")
        stream_skus = index.sku_list(stream.skus)
        in_stream = set(stream_skus)
        for sku in stream_skus:
            if sku not in index.products:
                problems.append(f"{path}.skus: no such product '{sku}'")
        known_skus = [sku for sku in stream_skus if sku in index.products]
        for field in ("mean", "std"):
            value = getattr(stream, field)
            if isinstance(value, dict):
                for sku in value:
                    if sku not in index.products:
                        problems.append(f"{path}.{field}.{sku}: no such product")
                    elif sku not in in_stream:
                        problems.append(f"{path}.{field}.{sku}: '{sku}' is not among this stream's skus")
                for sku in known_skus:
                    if sku not in value:
                        problems.append(f"{path}.{field}: no value for '{sku}'")
        if stream.distribution in {"normal", "negative_binomial"} and stream.std is None:
            problems.append(f"{path}.std: required for the {stream.distribution} distribution")
        if stream.distribution == "poisson" and stream.std is not None:
            problems.append(f"{path}.std: a poisson stream has std = √mean; remove std or use negative_binomial")
        if stream.distribution == "negative_binomial" and stream.std is not None:
            means = _per_sku(stream.mean, known_skus)
            stds = _per_sku(stream.std, known_skus)
            for sku in known_skus:
                mean, std = means.get(sku), stds.get(sku)
                if mean is not None and std is not None and mean > 0 and std**2 <= mean:
                    problems.append(
                        f"{path}.std: negative binomial needs variance above the mean "
                        f"(std {std:g}² ≤ mean {mean:g} for '{sku}'); use poisson or a larger std"
                    )
                    break
        if stream.trend <= -1:
            problems.append(f"{path}.trend: {stream.trend:g} would take the mean to zero or below in one period")
    return problems


def _reserve_problems(scenario: Scenario, index: _Index) -> list[str]:
    problems = []
    reserved: dict[str, float] = defaultdict(float)
    locations: dict[str, Location] = {loc.id: loc for loc in scenario.locations}
    for i, reserve in enumerate(scenario.rules.reserve_stock):
        path = f"rules.reserve_stock[{i}]"
        if reserve.location not in index.locations:
            problems.append(f"{path}.location: no such location '{reserve.location}'")
        for sku in index.sku_list(reserve.skus):
            if sku not in index.products:
                problems.append(f"{path}.skus: no such product '{sku}'")
        for tier in reserve.tiers:
            if tier not in index.tier_channels:
                problems.append(f"{path}.tiers: no such tier '{tier}'")
            elif reserve.location in index.locations and not (
                index.tier_channels[tier] & index.serves[reserve.location]
            ):
                problems.append(
                    f"{path}.tiers: tier '{tier}' is in channel(s) "
                    f"{', '.join(sorted(index.tier_channels[tier]))}, "
                    f"which '{reserve.location}' has no lane to; the reserve could never be used"
                )
        location = locations.get(reserve.location)
        if location is None:
            continue
        reserved[location.id] += reserve.quantity * len(index.sku_list(reserve.skus))
        if location.capacity is not None and reserved[location.id] > location.capacity + 1e-9:
            problems.append(
                f"{path}.quantity: reserves at '{location.id}' total {_fmt(reserved[location.id])} units, "
                f"above its capacity {_fmt(location.capacity)}"
            )
    return problems


def _cheapest_order(scenario: Scenario, index: _Index) -> float:
    """Value of the smallest purchase order any supplier accepts.

    As the simulator counts it for purchase approval and the purchase budget: units at the
    supplier's unit cost (at least the minimum order quantity, and one unit of a whole-unit
    SKU) plus the supplier's fixed cost per order.
    """
    values = []
    for supplier in scenario.suppliers:
        for sku, item in supplier.items.items():
            smallest = item.minimum_order_quantity
            if index.integer.get(sku, True):
                smallest = max(math.ceil(smallest), 1)
            values.append(item.unit_cost * smallest + supplier.fixed_order_cost)
    return min(values, default=0.0)


def _check_rules(scenario: Scenario, index: _Index) -> list[str]:
    rules = scenario.rules
    finance = scenario.finance
    problems = []
    if isinstance(rules.max_channel_share, dict):
        for channel in rules.max_channel_share:
            if channel not in index.channels:
                problems.append(f"rules.max_channel_share.{channel}: no such channel")
    for channel in scenario.channels:
        share = rules.max_channel_share
        share = share.get(channel.id) if isinstance(share, dict) else share
        needs = max(t.min_fill_rate for t in channel.tiers)
        if share == 0 and needs > 0:
            where = "rules.max_channel_share" + (f".{channel.id}" if isinstance(rules.max_channel_share, dict) else "")
            problems.append(
                f"{where}: channel '{channel.id}' may receive no stock, "
                f"yet a tier has a contractual minimum fill rate of {needs:g}"
            )
    problems += _reserve_problems(scenario, index)

    if rules.cash_rule:
        headroom = finance.opening_cash + finance.credit_line
        if finance.treasury_buffer > headroom:
            problems.append(
                f"finance.treasury_buffer: {_fmt(finance.treasury_buffer)} is above opening cash plus "
                f"credit line ({_fmt(headroom)}); the cash rule would block every purchase from the start"
            )

    cheapest = _cheapest_order(scenario, index)
    approval = rules.purchase_approval
    if approval is not None:
        if approval.action == "cap" and approval.value_limit < cheapest:
            problems.append(
                f"rules.purchase_approval.value_limit: {_fmt(approval.value_limit)} is below the cheapest "
                f"possible order ({_fmt(cheapest)}); every purchase would be capped to nothing"
            )
        if approval.action == "delay" and approval.delay_periods >= scenario.episode.horizon:
            problems.append(
                f"rules.purchase_approval.delay_periods: {approval.delay_periods} is not shorter than "
                f"the horizon ({scenario.episode.horizon}); a delayed order would never be placed"
            )
    budget = rules.purchase_budget_per_period
    if budget is not None and budget < cheapest:
        problems.append(
            f"rules.purchase_budget_per_period: {_fmt(budget)} is below the cheapest possible order "
            f"({_fmt(cheapest)}); nothing could ever be bought"
        )
    return problems


def episode_values(periods: int, skus: int, tiers: int, lanes: int, locations: int) -> int:
    """Values the simulator's per-period arrays hold for an episode: periods × SKUs × (tiers +
    lanes + locations) (demand per tier, pipelines per lane, stock per location)."""
    return periods * skus * (tiers + lanes + locations)


def _check_episode(scenario: Scenario) -> list[str]:
    episode = scenario.episode
    tiers = sum(len(channel.tiers) for channel in scenario.channels)
    values = episode_values(
        episode.horizon, len(scenario.products), tiers, len(scenario.lanes), len(scenario.locations)
    )
    if values > MAX_EPISODE_VALUES:
        return [
            f"episode.horizon: {episode.horizon:,} periods × {len(scenario.products)} SKUs × ({tiers} tiers + "
            f"{len(scenario.lanes)} lanes + {len(scenario.locations)} locations) is {values:,} values per episode, "
            f"more than the {MAX_EPISODE_VALUES:,} a simulation may hold; shorten the horizon"
        ]
    if episode.warmup >= episode.horizon:
        return [
            f"episode.warmup: {episode.warmup} periods leave none of the horizon ({episode.horizon}) "
            "for KPIs; make it shorter than the horizon"
        ]
    return []


def cross_checks(scenario: Scenario, base_dir: Path) -> list[str]:
    """All cross-field problems of ``scenario``; an empty list means it is usable."""
    index = _Index(scenario)
    return (
        _check_ids(scenario)
        + _check_products(scenario, index)
        + _check_locations(scenario, index)
        + _check_suppliers(scenario, index)
        + _check_lanes(scenario, index)
        + _check_demand(scenario, index, base_dir)
        + _check_rules(scenario, index)
        + _check_episode(scenario)
    )
