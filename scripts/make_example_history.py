"""Generate ``examples/history/``: a SYNTHETIC company's master data, rules and sales history.

Nothing here is real data. The company ("Alder & Finch Housewares", invented) and every number
are drawn from known models with a fixed seed, so the files are the same on every machine and
the demand fit can be judged against the truth (``truth.csv`` lists each series' model).

    python scripts/make_example_history.py            # writes examples/history/
    python scripts/make_example_history.py --out DIR  # somewhere else

The files:

- ``products.csv``, ``locations.csv``, ``channels.csv``, ``suppliers.csv``, ``lanes.csv``,
  ``stock.csv``: master data as an ERP would export it (see README "Your own data").
- ``rules.yaml``: finance settings and governance rules (contract fill rate, channel cap,
  reserve stock, treasury buffer).
- ``sales.csv``: 104 weeks (2023-01-02 … 2024-12-23) of weekly sales of 50 SKUs in 3 channels,
  with promotions, two stockout episodes (flagged, sales censored) and an intermittent tail.
- ``truth.csv``: the generating model of every channel × SKU series.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

import numpy as np

SEED = 20240101
WEEKS = 104
START = dt.date(2023, 1, 2)  # a Monday
CHANNELS = ("stores", "online", "wholesale")
#: Channel volume relative to stores.
CHANNEL_SCALE = {"stores": 1.0, "online": 0.45, "wholesale": 0.7}
#: First week of the README's backtest (the last 26 weeks, 2024-07-01 on): opening stock is set for it.
BACKTEST_START = WEEKS - 26
SKUS = tuple(f"SKU{i:03d}" for i in range(1, 51))
#: Promotions: (first week, last week, channels, SKUs, uplift factor on the mean). Weeks from 0.
PROMOTIONS = (
    (19, 20, ("stores",), SKUS[:10], 1.8),  # spring sale, stores, top-10 SKUs (May 2023)
    (46, 47, ("online",), SKUS, 2.5),  # Black Friday / Cyber week online (Nov 2023)
    (71, 72, ("stores",), SKUS[:10], 1.8),  # spring sale again (May 2024)
    (98, 99, ("online",), SKUS, 2.5),  # Black Friday / Cyber week online (Nov 2024)
)
#: Stockouts: (first week, last week, channel, SKUs, share of demand that could be sold).
STOCKOUTS = (
    (60, 65, "stores", ("SKU003", "SKU007"), 0.3),  # a late container: stores ran dry for 6 weeks
    (88, 90, "online", ("SKU012",), 0.0),  # listing off-line for 3 weeks
)

NAMES = (
    "mug", "bowl", "plate", "tumbler", "teapot", "jug", "skillet", "saucepan", "stockpot", "wok",
    "knife block", "chef knife", "peeler", "grater", "colander", "sieve", "whisk", "ladle",
    "spatula", "tongs", "cutting board", "mixing bowl", "measuring cups", "scale", "timer",
    "canister", "bread bin", "spice rack", "oven mitt", "apron", "tea towel", "placemat",
    "napkin set", "table runner", "candle", "vase", "photo frame", "cushion", "throw",
    "doormat", "storage box", "laundry basket", "hanger set", "shoe rack", "coat hook",
    "lamp", "clock", "mirror", "ice tray", "fondue set",
)  # fmt: skip


def _series_models(rng: np.random.Generator) -> list[dict]:
    """The generating model of each channel × SKU series (its truth)."""
    models = []
    for s, sku in enumerate(SKUS):
        if s < 15:
            kind, base = "negative_binomial", rng.uniform(20, 60)
        elif s < 35:
            kind, base = "poisson", rng.uniform(5, 20)
        elif s < 42:
            kind, base = "normal", rng.uniform(40, 90)
        else:
            kind, base = "poisson", rng.uniform(0.15, 0.6)  # the intermittent tail
        amplitude = rng.uniform(0.15, 0.35) if s < 35 else 0.0
        phase = rng.uniform(0, 52)
        trend = rng.choice([-0.002, 0.0, 0.0, 0.003]) if s < 42 else 0.0
        for channel in CHANNELS:
            mean = base * CHANNEL_SCALE[channel]
            cv = {"negative_binomial": 0.5, "normal": 0.2, "poisson": None}[kind]
            models.append(
                {
                    "channel": channel,
                    "sku": sku,
                    "distribution": kind,
                    "mean": round(mean, 3),
                    "cv": cv,
                    "trend": float(trend),
                    "amplitude": round(amplitude, 3),
                    "phase": round(phase, 2),
                }
            )
    return models


def _draw(rng: np.random.Generator, model: dict, mean: np.ndarray) -> np.ndarray:
    if model["distribution"] == "poisson":
        return rng.poisson(mean)
    if model["distribution"] == "negative_binomial":
        variance = np.maximum((model["cv"] * mean) ** 2, mean * 1.000001)
        p = mean / variance
        n = mean * p / (1 - p)
        return rng.negative_binomial(n, p)
    draws = rng.normal(mean, model["cv"] * mean)
    return np.maximum(np.round(draws), 0).astype(int)


def generate(out: Path) -> list[Path]:
    """Write the example company into ``out``; the files written."""
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    models = _series_models(rng)
    t = np.arange(WEEKS) - WEEKS  # the history's weeks relative to the period after it
    sales = np.zeros((WEEKS, len(CHANNELS), len(SKUS)), dtype=int)
    stockout = np.zeros_like(sales, dtype=bool)
    level = np.zeros((len(CHANNELS), len(SKUS)))
    for model in models:
        c, s = CHANNELS.index(model["channel"]), SKUS.index(model["sku"])
        mean = (
            model["mean"]
            * np.maximum(1 + model["trend"] * t, 0)
            * (1 + model["amplitude"] * np.sin(2 * math.pi * (t + model["phase"]) / 52))
        )
        for first, last, channels, skus, uplift in PROMOTIONS:
            if model["channel"] in channels and model["sku"] in skus:
                mean[first : last + 1] *= uplift
        demand = _draw(rng, model, mean)
        for first, last, channel, skus, share in STOCKOUTS:
            if model["channel"] == channel and model["sku"] in skus:
                demand[first : last + 1] = np.floor(demand[first : last + 1] * share)
                stockout[first : last + 1, c, s] = True
        sales[:, c, s] = demand
        level[c, s] = mean[BACKTEST_START - 13 : BACKTEST_START].mean()

    files = []

    def write(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8", newline="\n")
        files.append(path)

    lines = ["date,channel,sku,quantity,stockout"]
    for w in range(WEEKS):
        date = (START + dt.timedelta(weeks=w)).isoformat()
        for c, channel in enumerate(CHANNELS):
            for s, sku in enumerate(SKUS):
                if sales[w, c, s] or stockout[w, c, s]:  # like an ERP export: weeks without sales are left out
                    lines.append(f"{date},{channel},{sku},{sales[w, c, s]},{int(stockout[w, c, s])}")
    write("sales.csv", "\n".join(lines) + "\n")

    lines = ["channel,sku,distribution,mean_at_origin,cv,trend_per_week,season_amplitude,season_phase_weeks"]
    for m in models:
        cv = "" if m["cv"] is None else f"{m['cv']:g}"
        lines.append(
            f"{m['channel']},{m['sku']},{m['distribution']},{m['mean']:g},{cv},{m['trend']:g},"
            f"{m['amplitude']:g},{m['phase']:g}"
        )
    write("truth.csv", "\n".join(lines) + "\n")

    costs = np.round(rng.uniform(2, 40, len(SKUS)), 2)
    lines = ["sku,description,unit_cost,price,price_online,price_wholesale,holding_cost"]
    for s, sku in enumerate(SKUS):
        cost = costs[s]
        price = round(cost * 2.2, 2)
        lines.append(
            f"{sku},{NAMES[s]},{cost:.2f},{price:.2f},{round(price * 1.05, 2):.2f},"
            f"{round(cost * 1.45, 2):.2f},{round(cost * 0.004, 3):.3f}"
        )
    write("products.csv", "\n".join(lines) + "\n")

    write(
        "locations.csv",
        "location,description,capacity\n"
        "dc_north,Main DC: online and wholesale; feeds dc_south,60000\n"
        "dc_south,Regional DC: stores,30000\n",
    )
    write(
        "channels.csv",
        "channel,tier,priority,demand_share,min_fill_rate,penalty_per_unit_short,payment_terms_days\n"
        "stores,walkin,0,1,,0.5,0\n"
        "online,web,0,1,,0.5,0\n"
        "wholesale,contract,0,0.6,0.95,3,45\n"
        "wholesale,spot,1,0.4,,0.5,45\n",
    )
    lines = [
        "supplier,sku,unit_cost,minimum_order_quantity,capacity_per_period,fixed_order_cost,reliability,"
        "payment_terms_days"
    ]
    for s, sku in enumerate(SKUS):
        moq = "" if s >= 42 else 20
        lines.append(f"far_east,{sku},{costs[s]:.2f},{moq},,250,0.97,60")
    for s, sku in enumerate(SKUS[:15]):
        lines.append(f"local,{sku},{round(costs[s] * 1.15, 2):.2f},,400,50,1,30")
    write("suppliers.csv", "\n".join(lines) + "\n")
    write(
        "lanes.csv",
        "from,to,lead_time,lead_time_max,cost_per_unit,capacity_per_period\n"
        "far_east,dc_north,4,6,0.30,\n"
        "local,dc_north,1,,0.10,\n"
        "dc_north,dc_south,1,,0.08,8000\n"
        "dc_north,online,0,,0.60,\n"
        "dc_north,wholesale,0,,0.15,\n"
        "dc_south,stores,0,,0.05,\n",
    )
    # Opening stock at the backtest's start: about six weeks of the quarter before it's demand.
    lines = ["location,sku,quantity"]
    north = level[CHANNELS.index("online")] + level[CHANNELS.index("wholesale")]
    south = level[CHANNELS.index("stores")]
    for location, weekly in (("dc_north", north), ("dc_south", south)):
        for s, sku in enumerate(SKUS):
            quantity = int(round(6 * weekly[s]))
            if quantity:
                lines.append(f"{location},{sku},{quantity}")
    write("stock.csv", "\n".join(lines) + "\n")

    weekly_purchases = float((level.sum(axis=0) * costs).sum())
    cash = round(weekly_purchases * 8, -3)
    buffer = round(weekly_purchases * 2, -3)
    write(
        "rules.yaml",
        "# SYNTHETIC example company (see README.md): finance settings and governance rules.\n"
        f"# Weekly purchases at the recent demand level cost about {weekly_purchases:,.0f}.\n"
        "description: >-\n"
        "  Alder & Finch Housewares (SYNTHETIC example company): 50 SKUs, stores / online /\n"
        "  wholesale, two DCs, two suppliers; demand fitted from examples/history/sales.csv.\n"
        "currency: EUR\n"
        "finance:\n"
        f"  opening_cash: {cash:.0f}  # about 8 weeks of purchases\n"
        f"  credit_line: {round(weekly_purchases * 4, -3):.0f}\n"
        f"  treasury_buffer: {buffer:.0f}  # cash buffer: about 2 weeks of purchases\n"
        "  customer_payment_terms_days: 14\n"
        "  supplier_payment_terms_days: 30\n"
        "  cost_of_capital: 0.08\n"
        "  cost_method: fifo\n"
        "rules:\n"
        "  max_channel_share: {wholesale: 0.5}  # channel cap: wholesale takes at most half a DC's stock\n"
        "  reserve_stock:  # kept at dc_north for the wholesale contract tier\n"
        "    - {location: dc_north, skus: [SKU001, SKU002, SKU003, SKU004, SKU005], quantity: 40, tiers: [contract]}\n"
        "  serve_contract_minimums_first: true\n"
        "  cash_rule: true\n"
        "episode:\n"
        "  unmet_demand: lost_sales\n",
    )
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "examples" / "history")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
