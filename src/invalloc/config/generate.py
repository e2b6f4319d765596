"""Random but sensible scenarios of any size, for tests, benchmarks and experiments.

:func:`generate_scenario` returns plain scenario *data* (the dict a YAML file would hold),
so a caller can tweak it before validation, dump it with ``yaml.safe_dump`` or feed it to
:func:`invalloc.config.loader.parse_scenario`. The same arguments always give the same data.

The network it draws::

    sup_a (reliable, fixed lead time) ──┐                ┌─> dc_1 ──┐
                                        ├─> dc_central ──┼─> dc_2 ──┼─> channels (each served
    sup_b (cheaper, MOQ, capacity,    ──┘  (+ sup_b → some        ...        by one or more DCs)
           unreliable, random lead time)    regional DCs)

Everything a scenario can express is switched on by default (cash rule with a treasury
buffer, credit line, purchase approval, purchase budget, channel share cap, reserve stock,
perishable SKUs, net realisable values below cost, storage capacities, seasonality); the
keyword options switch features off or pin them. Quantities are scaled from the drawn demand
so that rules bind now and then without blocking everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Keyword options of :func:`generate_scenario` and their defaults. ``None`` means "drawn
#: from the seed".
DEFAULT_OPTIONS: dict[str, Any] = {
    "horizon": 52,
    "period_days": 7,
    "cost_method": None,  # "fifo" | "weighted_average" | None
    "unmet_demand": None,  # "backlog" | "lost_sales" | None
    "reward_basis": None,  # "economic" | "accounting" | None
    "backorder_replenishment": False,
    "integer_units": True,  # True | False | "mixed" (every third SKU fractional)
    "shelf_life": True,  # some SKUs perishable
    "net_realisable_value": True,  # some SKUs with NRV (some below cost)
    "location_capacity": True,
    "cash_rule": True,  # with a finite treasury buffer
    "approval_action": None,  # "cap" | "delay" | "none" | None
    "purchase_budget": True,
    "max_channel_share": True,
    "reserve_stock": True,
    "serve_contract_minimums_first": True,
    "seasonality": True,
    "shortfall_penalty": False,  # lane penalties for unshipped replenishment requests
    "supplier_capacity": True,
    "moq": True,
    "reliability": True,  # sup_b delivers a random share < 1
    "lead_time_kind": None,  # "fixed" | "uniform" | "discrete" | None (for sup_b)
    "sales_lead_time": None,  # int | None
    "sales_lane_capacity": False,  # a capacity on DC → channel lanes
    "distributions": ("poisson", "normal", "negative_binomial"),
}


def _share_split(rng: np.random.Generator, k: int) -> list[float]:
    """``k`` shares rounded to 4 decimals that sum to exactly 1 (the last takes the rest)."""
    if k == 1:
        return [1.0]
    raw = rng.dirichlet(np.full(k, 2.0))
    shares = [max(round(float(x), 4), 0.01) for x in raw[:-1]]
    total = sum(shares)
    if total > 0.99:  # leave the last tier at least 1%
        shares = [round(s * 0.99 / total, 4) for s in shares]
    last = round(1.0 - sum(shares), 10)
    return [*shares, last]


def generate_scenario(
    n_skus: int,
    n_locations: int,
    n_channels: int,
    seed: int = 0,
    *,
    tiers_per_channel: int = 2,
    **options: Any,
) -> dict[str, Any]:
    """Data of a random, valid scenario with the given numbers of SKUs, DCs and channels.

    :param n_skus: products (≥ 1).
    :param n_locations: DCs (≥ 1). The first is a central DC that both suppliers deliver to;
        with two or more it feeds every other DC by a transfer lane, and ``sup_b`` also
        delivers straight to some regional DCs.
    :param n_channels: sales channels (≥ 1), each served by one or more DCs; every DC
        serves at least one channel.
    :param seed: seed of the draw; the same arguments always give the same data.
    :param tiers_per_channel: customer tiers per channel (priorities 0, 1, …; the first
        tiers carry contractual minimum fill rates).
    :param options: feature switches, see :data:`DEFAULT_OPTIONS`: ``horizon``,
        ``period_days``, ``cost_method`` (``"fifo"``/``"weighted_average"``),
        ``unmet_demand`` (``"backlog"``/``"lost_sales"``), ``reward_basis``,
        ``backorder_replenishment``, ``integer_units`` (``True``/``False``/``"mixed"``),
        ``shelf_life``, ``net_realisable_value``, ``location_capacity``, ``cash_rule``,
        ``approval_action`` (``"cap"``/``"delay"``/``"none"``), ``purchase_budget``,
        ``max_channel_share``, ``reserve_stock``, ``serve_contract_minimums_first``,
        ``seasonality``, ``shortfall_penalty``, ``supplier_capacity``, ``moq``,
        ``reliability``, ``lead_time_kind`` (``"fixed"``/``"uniform"``/``"discrete"``),
        ``sales_lead_time``, ``sales_lane_capacity``, ``distributions`` (subset of
        ``poisson``, ``normal``, ``negative_binomial``). Options left at ``None`` are drawn
        from the seed.
    :returns: a plain dict (lists, dicts, str, int, float, bool) that passes
        :func:`invalloc.config.loader.parse_scenario`.
    :raises ValueError: a size below 1 or an unknown option.
    """
    if min(n_skus, n_locations, n_channels, tiers_per_channel) < 1:
        raise ValueError("n_skus, n_locations, n_channels and tiers_per_channel must all be at least 1")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(DEFAULT_OPTIONS)})")
    opt = {**DEFAULT_OPTIONS, **options}
    rng = np.random.default_rng(seed)

    def pick(name: str, choices: tuple[Any, ...]) -> Any:
        value = opt[name]
        drawn = choices[int(rng.integers(len(choices)))]  # drawn always: same stream either way
        if value is None:
            return drawn
        if value not in choices:
            raise ValueError(f"option {name}={value!r}: choose from {', '.join(map(repr, choices))}")
        return value

    def money(x: float) -> float:
        return round(float(x), 2)

    horizon = int(opt["horizon"])
    if horizon < 1:
        raise ValueError("option horizon must be at least 1")
    cost_method = pick("cost_method", ("fifo", "weighted_average"))
    unmet_demand = pick("unmet_demand", ("backlog", "lost_sales"))
    reward_basis = pick("reward_basis", ("economic", "accounting"))
    approval_action = pick("approval_action", ("cap", "delay", "none"))
    lead_time_kind = pick("lead_time_kind", ("fixed", "uniform", "discrete"))
    distributions = tuple(opt["distributions"])
    if not distributions or set(distributions) - {"poisson", "normal", "negative_binomial"}:
        raise ValueError("option distributions: give a non-empty subset of poisson, normal, negative_binomial")

    width = max(3, len(str(n_skus)))
    skus = [f"sku{i + 1:0{width}d}" for i in range(n_skus)]
    locations = ["dc_central"] + [f"dc_{i}" for i in range(1, n_locations)]
    channels = [f"ch_{i}" for i in range(n_channels)]
    integer_option = opt["integer_units"]
    if integer_option == "mixed":
        integer = [i % 3 != 2 for i in range(n_skus)]
    elif integer_option in (True, False):
        integer = [bool(integer_option)] * n_skus
    else:
        raise ValueError("option integer_units: choose True, False or 'mixed'")

    def units(x: float, sku: int) -> float:
        return float(math.floor(x)) if integer[sku] else round(float(x), 2)

    # ---------------------------------------------------------------- channels and tiers
    tier_names = ["gold", "silver", "bronze", "spot", "outlet"]
    channel_data = []
    tier_ids: dict[str, list[str]] = {}
    for channel in channels:
        shares = _share_split(rng, tiers_per_channel)
        tiers = []
        for k in range(tiers_per_channel):
            name = tier_names[k] if k < len(tier_names) else f"t{k}"
            tier = {
                "id": f"{channel}_{name}",  # unique over channels, so rules can name it alone
                "priority": k,
                "demand_share": shares[k],
                "min_fill_rate": round(float(rng.uniform(0.8, 0.95)), 2) if k == 0 else 0.0,
                "penalty_per_unit_short": round(float(rng.uniform(0.5, 4.0)) / (k + 1), 2),
                "price_multiplier": round(1.0 - 0.05 * k, 2) if k < 10 else 0.5,
            }
            tiers.append(tier)
        tier_ids[channel] = [t["id"] for t in tiers]
        channel_data.append({"id": channel, "tiers": tiers})
    if n_channels > 1:
        channel_data[-1]["payment_terms_days"] = int(rng.choice([0, 14, 60]))

    # ---------------------------------------------------------------- demand
    mean = rng.uniform(2.0, 40.0, size=(n_channels, n_skus)).round(2)  # per channel × SKU
    streams = []
    for c, channel in enumerate(channels):
        chosen = rng.choice(len(distributions), size=n_skus)
        for k, distribution in enumerate(distributions):
            members = [s for s in range(n_skus) if chosen[s] == k]
            if not members:
                continue
            stream: dict[str, Any] = {
                "channel": channel,
                "skus": "*" if len(members) == n_skus else [skus[s] for s in members],
                "distribution": distribution,
                "mean": {skus[s]: float(mean[c, s]) for s in members},
            }
            if distribution == "normal":
                stream["std"] = {skus[s]: round(float(mean[c, s] * rng.uniform(0.1, 0.4)), 2) for s in members}
            elif distribution == "negative_binomial":
                stds = {}
                for s in members:
                    std = math.ceil(math.sqrt(mean[c, s] * rng.uniform(1.5, 3.0)) * 100) / 100
                    while std**2 <= mean[c, s]:  # variance strictly above the mean
                        std += 0.01
                    stds[skus[s]] = round(std, 2)
                stream["std"] = stds
            if opt["seasonality"] and rng.random() < 0.5:
                stream["seasonality"] = {
                    "amplitude": round(float(rng.uniform(0.1, 0.4)), 2),
                    "period": int(rng.choice([4, 12, 13, 52])),
                    "phase": round(float(rng.uniform(0, 4)), 1),
                }
                stream["trend"] = round(float(rng.uniform(-0.002, 0.005)), 4)
            streams.append(stream)

    # ---------------------------------------------------------------- lanes to channels
    serving: dict[int, list[int]] = {c: [c % n_locations] for c in range(n_channels)}
    for c in range(n_channels):
        if n_locations > 1 and rng.random() < 0.5:
            other = int(rng.integers(n_locations))
            if other not in serving[c]:
                serving[c].append(other)
    for d in range(n_locations):
        if not any(d in served for served in serving.values()):
            serving[int(rng.integers(n_channels))].append(d)
    # Demand per period flowing out of each DC to customers (split evenly over a channel's DCs).
    through = np.zeros((n_locations, n_skus))
    for c, dcs in serving.items():
        for d in dcs:
            through[d] += mean[c] / len(dcs)
    total_demand = mean.sum(axis=0)  # (S,)

    # ---------------------------------------------------------------- products
    unit_cost = rng.uniform(1.0, 50.0, size=n_skus).round(2)
    products = []
    perishable = set()
    for s, sku in enumerate(skus):
        markup = float(rng.uniform(1.3, 2.2))
        base_price = unit_cost[s] * markup
        if n_channels == 1 or rng.random() < 0.2:
            price: float | dict[str, float] = money(base_price)
            highest = price
        else:
            price = {ch: money(base_price * rng.uniform(0.85, 1.0)) for ch in channels}
            highest = max(price.values())
        product: dict[str, Any] = {
            "id": sku,
            "unit_cost": float(unit_cost[s]),
            "price": price,
            "holding_cost": round(float(unit_cost[s] * rng.uniform(0.003, 0.02)), 4),
        }
        if opt["shelf_life"] and rng.random() < 0.3:
            product["shelf_life"] = int(rng.integers(3, 12))
            perishable.add(s)
        if opt["net_realisable_value"] and rng.random() < 0.25:
            # Sometimes below cost (written down at the first close), never above the price.
            product["net_realisable_value"] = min(money(unit_cost[s] * rng.uniform(0.7, 1.2)), highest)
        if not integer[s]:
            product["integer_units"] = False
        products.append(product)

    # ---------------------------------------------------------------- suppliers
    items_a = {sku: {"unit_cost": float(unit_cost[s])} for s, sku in enumerate(skus)}
    offered_b = [s for s in range(n_skus) if n_skus == 1 or rng.random() < 0.7] or [0]
    items_b: dict[str, dict[str, float]] = {}
    largest_moq = 0.0
    for s in offered_b:
        item: dict[str, float] = {"unit_cost": money(unit_cost[s] * rng.uniform(0.88, 0.97))}
        if opt["moq"]:
            moq = units(total_demand[s] * rng.uniform(0.5, 2.0), s)
            item["minimum_order_quantity"] = moq
            largest_moq = max(largest_moq, moq)
        if opt["supplier_capacity"] and rng.random() < 0.6:
            item["capacity_per_period"] = max(
                units(total_demand[s] * rng.uniform(1.0, 3.0), s), item.get("minimum_order_quantity", 0.0) * 2
            )
        items_b[skus[s]] = item
    supplier_b: dict[str, Any] = {
        "id": "sup_b",
        "fixed_order_cost": money(rng.uniform(20, 150)),
        "payment_terms_days": int(rng.choice([14, 45, 60])),
        "items": items_b,
    }
    if opt["reliability"]:
        supplier_b["reliability"] = round(float(rng.uniform(0.85, 0.98)), 2)
    suppliers = [
        {"id": "sup_a", "fixed_order_cost": money(rng.uniform(10, 100)), "items": items_a},
        supplier_b,
    ]

    # ---------------------------------------------------------------- lanes
    if lead_time_kind == "fixed":
        lead_b: Any = int(rng.integers(1, 4))
    elif lead_time_kind == "uniform":
        lead_b = {"kind": "uniform", "low": 1, "high": int(rng.integers(2, 5))}
    else:
        lead_b = {"kind": "discrete", "values": [1, 2, 4], "probabilities": _share_split(rng, 3)}
    penalty = opt["shortfall_penalty"]
    demand_units = float(total_demand.sum())

    def lane(source: str, destination: str, lead: Any, cost: float, cap: float | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "from": source,
            "to": destination,
            "lead_time": lead,
            "cost_per_unit": money(cost),
        }
        if cap is not None:
            data["capacity_per_period"] = round(float(cap), 2)
        if penalty and source not in channels and destination not in channels:
            data["shortfall_penalty_per_unit"] = round(float(rng.uniform(0.01, 0.1)), 3)
        return data

    lanes = [
        lane("sup_a", "dc_central", int(rng.integers(1, 4)), rng.uniform(0.02, 0.2), None),
        lane("sup_b", "dc_central", lead_b, rng.uniform(0.02, 0.15), max(demand_units * 3.0, largest_moq * 2)),
    ]
    for d in range(1, n_locations):
        cap = float(through[d].sum() * rng.uniform(1.5, 3.0)) if rng.random() < 0.7 else None
        lanes.append(lane("dc_central", locations[d], int(rng.integers(0, 3)), rng.uniform(0.01, 0.1), cap))
        if rng.random() < 0.4:
            lanes.append(lane("sup_b", locations[d], lead_b, rng.uniform(0.05, 0.2), None))
    sales_lead = opt["sales_lead_time"]
    for c, dcs in serving.items():
        for d in dcs:
            lead = int(rng.integers(0, 2)) if sales_lead is None else int(sales_lead)
            cap = float(through[d].sum() * rng.uniform(0.8, 1.5)) if opt["sales_lane_capacity"] else None
            lanes.append(lane(locations[d], channels[c], lead, rng.uniform(0.0, 0.3), cap))

    # ---------------------------------------------------------------- locations
    # The central DC also stocks for the DCs it feeds by transfer.
    regional = through[1:].sum(axis=0) if n_locations > 1 else np.zeros(n_skus)
    location_data = []
    for d, location in enumerate(locations):
        cover = float(rng.uniform(2.0, 4.0))
        need = through[d] * cover + (regional * 2.0 if d == 0 else 0.0)
        opening = {sku: units(need[s], s) for s, sku in enumerate(skus)}
        entry: dict[str, Any] = {"id": location, "opening_stock": opening}
        if opt["location_capacity"]:
            entry["capacity"] = round(max(sum(opening.values()), float(need.sum())) * rng.uniform(1.5, 2.5) + 10, 0)
        if d > 0 and rng.random() < 0.5:
            entry["holding_cost"] = {
                sku: round(products[s]["holding_cost"] * 1.25, 4) for s, sku in enumerate(skus) if rng.random() < 0.5
            }
            if not entry["holding_cost"]:
                del entry["holding_cost"]
        location_data.append(entry)

    # ---------------------------------------------------------------- finance and rules
    purchases_per_period = float((total_demand * unit_cost).sum())
    opening_cash = money(purchases_per_period * rng.uniform(3.0, 8.0))
    credit_line = money(purchases_per_period * rng.uniform(1.0, 4.0))
    finance: dict[str, Any] = {
        "opening_cash": opening_cash,
        "credit_line": credit_line,
        "customer_payment_terms_days": int(rng.choice([0, 7, 30])),
        "supplier_payment_terms_days": int(rng.choice([0, 14, 30])),
        "cost_of_capital": round(float(rng.uniform(0.02, 0.12)), 3),
        "cost_method": cost_method,
        "lower_of_cost_and_nrv": True,
    }
    rules: dict[str, Any] = {
        "cash_rule": bool(opt["cash_rule"]),
        "serve_contract_minimums_first": bool(opt["serve_contract_minimums_first"]),
    }
    if opt["cash_rule"]:
        finance["treasury_buffer"] = money(
            min(purchases_per_period * rng.uniform(0.5, 1.5), opening_cash + credit_line)
        )

    # Smallest order any supplier accepts: rules must leave room for it.
    cheapest = min(
        [float(unit_cost[s]) for s in range(n_skus)]
        + [
            item["unit_cost"] * max(math.ceil(item.get("minimum_order_quantity", 0.0)), 1)
            if integer[skus.index(sku)]
            else item["unit_cost"] * item.get("minimum_order_quantity", 0.0)
            for sku, item in items_b.items()
        ]
    )
    fixed_costs = max(s["fixed_order_cost"] for s in suppliers)
    if approval_action != "none":
        limit = max(purchases_per_period * rng.uniform(0.3, 1.0), cheapest + fixed_costs, 1.0)
        approval: dict[str, Any] = {"value_limit": money(limit + 0.01), "action": approval_action}
        if approval_action == "delay":
            approval["delay_periods"] = int(min(rng.integers(1, 3), max(horizon - 1, 1)))
            if approval["delay_periods"] >= horizon:  # a horizon of 1 leaves no room for a delay
                approval = {"value_limit": approval["value_limit"], "action": "cap"}
        rules["purchase_approval"] = approval
    if opt["purchase_budget"]:
        rules["purchase_budget_per_period"] = money(
            max(purchases_per_period * rng.uniform(0.8, 2.0), cheapest + fixed_costs) + 0.01
        )
    if opt["max_channel_share"] and n_channels > 1:
        if rng.random() < 0.5:
            rules["max_channel_share"] = round(float(rng.uniform(0.6, 0.9)), 2)
        else:
            rules["max_channel_share"] = {ch: round(float(rng.uniform(0.5, 1.0)), 2) for ch in channels}
    if opt["reserve_stock"]:
        c = int(rng.integers(n_channels))
        d = serving[c][0]
        quantity = float(rng.integers(1, 6))
        reserve_skus: str | list[str] = "*" if rng.random() < 0.5 else [skus[int(rng.integers(n_skus))]]
        rules["reserve_stock"] = [
            {
                "location": locations[d],
                "skus": reserve_skus,
                "quantity": quantity,
                "tiers": [tier_ids[channels[c]][0]],
            }
        ]
        if "capacity" in location_data[d]:
            reserved = quantity * (n_skus if reserve_skus == "*" else 1)
            location_data[d]["capacity"] = max(location_data[d]["capacity"], reserved + 10.0)

    episode = {
        "period_days": int(opt["period_days"]),
        "horizon": horizon,
        "unmet_demand": unmet_demand,
        "discount": round(float(rng.uniform(0.97, 1.0)), 3),
        "warmup": 0,
        "backorder_replenishment": bool(opt["backorder_replenishment"]),
        "reward_basis": reward_basis,
    }
    features = [f"{len(perishable)} perishable SKUs"] if perishable else []
    return {
        "name": f"generated_s{n_skus}_d{n_locations}_c{n_channels}_seed{seed}",
        "description": (
            f"Generated: {n_skus} SKUs, {n_locations} DCs, {n_channels} channels, seed {seed}"
            + (f" ({', '.join(features)})" if features else "")
            + "."
        ),
        "currency": "USD",
        "products": products,
        "suppliers": suppliers,
        "locations": location_data,
        "channels": channel_data,
        "lanes": lanes,
        "demand": {"streams": streams},
        "finance": finance,
        "rules": rules,
        "episode": episode,
    }
