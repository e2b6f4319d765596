"""Scenario schema: the YAML a user writes to describe a supply chain.

Every model forbids unknown keys, so a typo in a scenario is an error rather than a
silently ignored setting. Cross-field checks (lanes to missing nodes, rules that
contradict each other) live in :mod:`invalloc.config.checks` so that all problems are
reported together, each with its YAML path.

Units used throughout:
- quantities are in units of product (``float``; whole units where ``integer_units``);
- money is in the scenario's currency;
- time is in periods unless a field name ends in ``_days``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Upper bounds keep every sum the books form far inside float64 (1e308 prices would turn the
# books into inf/NaN) and every array the simulator allocates inside memory.
#: Largest money amount per unit (price, cost, penalty, freight).
MAX_UNIT_MONEY = 1e9
#: Largest money amount in total (cash, credit line, budget, approval limit, order cost).
MAX_MONEY = 1e15
#: Largest quantity in units (stock, capacity, demand mean, order quantity).
MAX_UNITS = 1e9
#: Longest episode in periods (the analytic checks run 75,000; the arrays' size is bounded
#: separately, see :data:`invalloc.config.checks.MAX_EPISODE_VALUES`).
MAX_PERIODS = 1_000_000
#: Longest lead time, delay or shelf life in periods.
MAX_LEAD_TIME = 1_000
#: Longest payment term in days (ten years).
MAX_DAYS = 3_650


def _buffer_in_range(value: float) -> float:
    """The treasury buffer: -inf (no buffer) or a money amount within ±MAX_MONEY."""
    if value != float("-inf") and not -MAX_MONEY <= value <= MAX_MONEY:
        raise ValueError(f"must be within ±{MAX_MONEY:g} (or -.inf for no buffer)")
    return value


NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
UnitMoney = Annotated[float, Field(ge=0, le=MAX_UNIT_MONEY)]
Money = Annotated[float, Field(ge=0, le=MAX_MONEY)]
Units = Annotated[float, Field(ge=0, le=MAX_UNITS)]
Periods = Annotated[int, Field(ge=0, le=MAX_LEAD_TIME)]
Days = Annotated[int, Field(ge=0, le=MAX_DAYS)]
Identifier = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
#: A value given once for every SKU, or per SKU id.
PerSku = Units | dict[Identifier, Units]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(_Model):
    """A stock-keeping unit (SKU)."""

    id: Identifier
    unit_cost: UnitMoney = Field(description="Standard cost per unit; values opening stock.")
    price: UnitMoney | dict[Identifier, UnitMoney] = Field(
        description="Sale price per unit, one for all channels or per channel id."
    )
    holding_cost: UnitMoney = Field(0.0, description="Cost per unit of end-of-period on-hand stock per period.")
    shelf_life: Annotated[int, Field(ge=1, le=MAX_LEAD_TIME)] | None = Field(
        None, description="Periods from receipt from a supplier until units expire and are written off."
    )
    net_realisable_value: UnitMoney | None = Field(
        None, description="Estimated selling price less costs to sell, per unit (IAS 2 / ASC 330)."
    )
    integer_units: bool = Field(True, description="Quantities are whole units (requests rounded down).")


class FixedLeadTime(_Model):
    kind: Literal["fixed"] = "fixed"
    periods: Periods


class UniformLeadTime(_Model):
    """Lead time drawn uniformly from the integers ``low`` … ``high`` (inclusive) per order."""

    kind: Literal["uniform"]
    low: Periods
    high: Periods


class DiscreteLeadTime(_Model):
    """Lead time drawn from ``values`` with probabilities ``probabilities`` per order."""

    kind: Literal["discrete"]
    values: list[Periods] = Field(min_length=1)
    probabilities: list[Share] = Field(min_length=1)


LeadTime = Periods | Annotated[FixedLeadTime | UniformLeadTime | DiscreteLeadTime, Field(discriminator="kind")]


class SupplierItem(_Model):
    """What one supplier offers for one SKU."""

    unit_cost: UnitMoney
    minimum_order_quantity: Units = 0.0
    capacity_per_period: Units | None = Field(None, description="Units per period; None = unlimited.")


class Supplier(_Model):
    id: Identifier
    items: dict[Identifier, SupplierItem] = Field(min_length=1, description="Offer per SKU id.")
    fixed_order_cost: Money = Field(0.0, description="Cost per purchase order (per supplier and DC).")
    reliability: Share = Field(
        1.0, description="Expected share of an ordered quantity that is delivered (binomial per unit)."
    )
    payment_terms_days: Days | None = Field(
        None, description="Days after shipment that the invoice is due; default from finance."
    )


class Location(_Model):
    """A warehouse or distribution centre (DC)."""

    id: Identifier
    capacity: Annotated[float, Field(gt=0, le=MAX_UNITS)] | None = Field(
        None, description="Units of all SKUs together; None = unlimited."
    )
    opening_stock: PerSku = 0.0
    holding_cost: dict[Identifier, UnitMoney] | None = Field(
        None, description="Holding cost per unit per period at this DC, overriding the product's."
    )


class Lane(_Model):
    """A transport link: supplier→DC (purchase), DC→DC (transfer) or DC→channel (sale)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: Identifier = Field(alias="from")
    destination: Identifier = Field(alias="to")
    lead_time: LeadTime = 0
    cost_per_unit: UnitMoney = 0.0
    capacity_per_period: Units | None = Field(None, description="Units per period over all SKUs.")
    shortfall_penalty_per_unit: UnitMoney = Field(
        0.0,
        description=(
            "Penalty per unit of a replenishment request on this lane that is not shipped in its "
            "period (an internal service-level charge, as OR-Gym's k for stages 1..3)."
        ),
    )


class Tier(_Model):
    """A customer tier inside a channel."""

    id: Identifier
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = Field(description="0 is served first.")
    demand_share: Share = Field(description="Share of the channel's demand that comes from this tier.")
    min_fill_rate: Share = Field(0.0, description="Contractual minimum fill rate per period.")
    penalty_per_unit_short: UnitMoney = 0.0
    price_multiplier: Annotated[float, Field(gt=0, le=1_000)] = Field(
        1.0, description="Tier price = channel price × multiplier."
    )


class Channel(_Model):
    id: Identifier
    tiers: list[Tier] = Field(min_length=1)
    payment_terms_days: Days | None = Field(
        None, description="Days after delivery that customers pay; default from finance."
    )


class Seasonality(_Model):
    amplitude: Share = Field(description="Relative swing: mean × (1 + amplitude·sin(2π(t+phase)/period)).")
    period: Annotated[int, Field(ge=2, le=MAX_PERIODS)]
    phase: Annotated[float, Field(ge=-MAX_PERIODS, le=MAX_PERIODS)] = 0.0


class DemandStream(_Model):
    """Demand of one channel for one or more SKUs (``skus: "*"`` for all)."""

    channel: Identifier
    skus: Literal["*"] | list[Identifier] = "*"
    distribution: Literal["poisson", "normal", "negative_binomial"]
    mean: PerSku
    std: PerSku | None = Field(None, description="Standard deviation (normal, negative_binomial).")
    trend: Annotated[float, Field(ge=-10, le=10)] = Field(0.0, description="Relative growth of the mean per period.")
    seasonality: Seasonality | None = None


class Bootstrap(_Model):
    """Demand block-resampled from a sales history, fresh for every episode seed.

    Each episode is a sequence of blocks of ``block_periods`` whole periods (every channel and
    SKU together), each block starting at a period of the history drawn uniformly: a moving-block
    bootstrap, which keeps the correlation across channels and SKUs and over a block's periods.
    """

    history: str = Field(
        description="CSV with columns period,channel,sku,quantity, periods 0 … P−1 (path relative to the YAML)."
    )
    block_periods: Annotated[int, Field(ge=1, le=MAX_PERIODS)] = Field(
        4, description="Consecutive history periods per drawn block."
    )


class Demand(_Model):
    streams: list[DemandStream] = Field(default_factory=list)
    trace: str | None = Field(
        None, description="CSV with columns period,channel,sku,quantity; replayed exactly (path relative to the YAML)."
    )
    bootstrap: Bootstrap | None = Field(None, description="Resample a sales history instead of streams.")


class Finance(_Model):
    opening_cash: Annotated[float, Field(ge=-MAX_MONEY, le=MAX_MONEY)] = 0.0
    credit_line: Money = 0.0
    treasury_buffer: Annotated[float, AfterValidator(_buffer_in_range)] = Field(
        float("-inf"), description="Minimum of cash + unused credit − payables due that a purchase may leave."
    )
    customer_payment_terms_days: Days = 0
    supplier_payment_terms_days: Days = 0
    cost_of_capital: Annotated[float, Field(ge=0, le=10)] = Field(
        0.0, description="Annual interest rate charged on credit used."
    )
    cost_method: Literal["fifo", "weighted_average"] = "fifo"
    lower_of_cost_and_nrv: bool = True


class ReserveStock(_Model):
    location: Identifier
    skus: Literal["*"] | list[Identifier] = "*"
    quantity: Units
    tiers: list[Identifier] = Field(min_length=1, description="Tier ids (channel/tier or tier) allowed to consume it.")


class PurchaseApproval(_Model):
    value_limit: Annotated[float, Field(gt=0, le=MAX_MONEY)] = Field(
        description="Purchase-order value above which approval is needed."
    )
    action: Literal["cap", "delay"] = "cap"
    delay_periods: Annotated[int, Field(ge=1, le=MAX_LEAD_TIME)] = 1


class Rules(_Model):
    """Governance rules: hard constraints that every executed action satisfies."""

    max_channel_share: Share | dict[Identifier, Share] | None = Field(
        None, description="Max share of a DC's available stock one channel may receive per period."
    )
    reserve_stock: list[ReserveStock] = Field(default_factory=list)
    serve_contract_minimums_first: bool = True
    purchase_approval: PurchaseApproval | None = None
    purchase_budget_per_period: Money | None = None
    cash_rule: bool = True


class Episode(_Model):
    period_days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 1
    horizon: Annotated[int, Field(ge=1, le=MAX_PERIODS)] = Field(description="Periods per episode.")
    unmet_demand: Literal["backlog", "lost_sales"] = "backlog"
    discount: Annotated[float, Field(gt=0, le=1)] = 1.0
    warmup: Annotated[int, Field(ge=0, le=MAX_PERIODS)] = Field(0, description="First periods left out of KPIs.")
    backorder_replenishment: bool = Field(
        False,
        description=(
            "Unshipped parts of replenishment requests (orders and transfers) stay open and are "
            "added to the next period's request, as OR-Gym's backlog variant does."
        ),
    )
    reward_basis: Literal["economic", "accounting"] = Field(
        "economic",
        description=(
            "economic: purchases are a cost when the supplier ships; accounting: the period's "
            "accrual profit (cost of goods sold when sold, write-downs)."
        ),
    )


class Scenario(_Model):
    name: Identifier
    description: str = ""
    currency: str = "USD"
    products: list[Product] = Field(min_length=1)
    suppliers: list[Supplier] = Field(min_length=1)
    locations: list[Location] = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    lanes: list[Lane] = Field(min_length=1)
    demand: Demand
    finance: Finance = Field(default_factory=Finance)
    rules: Rules = Field(default_factory=Rules)
    episode: Episode
