"""The hindsight-optimal bound (``--policy oracle``): one linear program of a whole episode.

:class:`OraclePolicy` cannot see demand at ``reset``. At the first decision point of an
episode (:meth:`OraclePolicy.plan`) it reads the episode's realised demand
(``simulator.tier_demand``) and the simulator's state, writes the rest of the episode as
one linear program, solves it with HiGHS and then requests the optimal decisions period by
period through the normal feasibility layer. The program's optimal value is an **upper
bound** on the total discounted reward any policy can reach on that seed
(:attr:`OraclePolicy.bound`); the simulated reward of the plan is a lower one.

Variables (continuous; ``t`` runs over the periods left; shapes as in
:mod:`invalloc.sim.network`):

==========  ==========================================================================
variable    meaning
==========  ==========================================================================
``v``       units a supplier ships on a purchase lane (per lead-time option) × SKU
``now``     units ordered and shipped in the period, per purchase lane × SKU (only with
            approval ``delay``, as are the next)
``held``    units ordered in the period and held for approval, shipped ``delay`` later
``x``       units sent on a transfer lane (per lead-time option) × SKU
``y``       units shipped on a sales lane × SKU
``z``       units served per tier × SKU (a channel's lanes ship what its tiers are served;
            how a lane's units split over tiers is then a transportation problem without
            limits, so it is left out)
``I``       on hand per DC × SKU at the end of the period (after sales, before expiry)
``w``       units expiring at the close (perishable SKUs)
``B``       customer backlog per tier × SKU (``unmet_demand: backlog``)
``cash``    cash at each decision point and ``u``, credit used at a close (with interest)
==========  ==========================================================================

Constraints, in the simulator's order of events: transfers leave at the decision point,
limited by the source's on hand *before* this period's arrivals; shipments arrive after
their lead time; customers are served from the on hand after arrivals; balance
``I[t] = I[t-1] - w[t-1] - out[t] + arrivals[t] - sales[t]``; a sales lane ships at most
its channel's share of the DC's stock after arrivals; tiers are served at most their demand
(plus backlog, ``B[t] = B[t-1] + D[t] - z[t]``); lane, supplier and storage capacities
(storage counts on hand plus everything inbound, as the feasibility layer does); the
purchase budget and approval limit; stock alive after a close entered within the shelf
life, per DC and per DC with every DC it feeds by transfers (transfers do not make units
younger); cash ``cash[t+1] = cash[t] - freight - bills due - holding - penalties +
receipts due - interest`` with ``u[t] ≥ -cash`` at the close. The objective is the
simulator's economic reward: sales value − purchases (when shipped) − freight − holding on
end-of-period on hand − per-unit shortage penalties − interest, each period × discount^t.
Replenishment shortfall penalties (OR-Gym's ``k``) are zero: the plan never requests more
than can be shipped.

**The bound program** relaxes what it cannot state exactly, so that its value stays at or
above what any policy reaches in the simulator:

- whole units, minimum order quantities and fixed order costs are dropped;
- reliability < 1: ``v`` counts the units *shipped* (a policy orders at least that, and
  every rule is monotone in the order), so it is full reliability;
- random lead times: each shipment may take any lead time of its lane's distribution,
  chosen by the program. (Always the shortest is *not* a relaxation: arriving early costs
  holding, storage and shelf life.) Revenue is collected after a channel's quickest lane;
- the cash rule is dropped. The simulator lets a period's purchase of zero stand when the
  headroom is negative, and a policy can drive it negative (base stock does on ``retail``),
  so ``purchases ≤ headroom`` in every period is not a relaxation; the exact disjunction
  needs a binary per period. Solved as a MILP on ``retail`` (seeds 0, 1: 933,358 and
  926,521 against this program's 938,067 and 929,656, 60–95 s each) it tightens the bound
  by only 0.5 %. Interest on credit used is kept;
- reserve stock is dropped (``sales ≤ max(stock − reserve, 0)`` is not convex);
- approval ``delay``: held orders are free in value (the simulator holds only orders above
  the limit) and count in the budget when placed, in the capacities when placed and when
  released; with delays, storage limits are dropped at DCs with purchase lanes (the
  feasibility layer lets released orders push a DC over its capacity);
- serving order (contract minimums, tier priority, a channel's lanes in lane order) is
  free; expiry is free disposal ``w`` bounded by the shelf-life windows.

**The executable plan.** When the bound program's solution could not be requested as it
is, a second program with the same structure is solved for the requests, tightened so that
the feasibility layer has nothing to cut: the cash rule as ``purchases ≤ headroom`` every
period (a restriction), the fixed order costs of the lanes the bound orders on reserved
in the budget and cash limits (a lane's own in its approval limit); reserves kept on hand
at every close and out of transfers; random lead times at their longest (goods come on
time or early), no perishables on such lanes where a fixed-lead lane offers them,
reliability as the expected share delivered; stock written
off only in the close where it may expire; room in every limit for rounding to whole units
(orders and allocations to the nearest unit, transfers up, so that a regional DC whose
sales are capped at a share of its stock holds what the plan counts on). Rules it states
but cannot meet get penalised slack (:attr:`EpisodeProgram.slack_used`). Then, re-solving
from the last basis: approval ``delay`` — a lane's order in a period is either within the
limit or held whole; the plan holds where the first solution held more than the limit, or
never, whichever is worth more; lanes without an allocation decision ship what the
simulator would (their channel's demand up to the channel's share of the stock); orders
below a supplier's minimum are raised to it or forbidden, whichever is worth more
(:data:`MOQ_ROUNDS`). Without such rules and with a whole-unit solution (the OR-Gym
mirrors) one program serves both.

Executing the plan loses a little: fixed order costs are paid, random lead times and
partial deliveries differ from the plan (which is open loop), FIFO issues and the
simulator serves tiers by priority and a channel's lanes in lane order.

**Solving.** Every solve must end with HiGHS reporting the program *Optimal*; no other
status is used. Re-solves after a change of bounds start hot from the solver's last state;
when a solve ends otherwise, :data:`SOLVE_STRATEGIES` are tried in turn (the last optimal
basis set afresh, then cold solves with presolve by dual simplex, interior point with
crossover and primal simplex). A trial change of bounds (rounding, approval modes, minimum
orders) that an attempt finds infeasible is undone by its caller. An episode that no
strategy solves raises :class:`OracleSolveError`, a one-line :class:`PolicyError`. The
failure seen in practice: on retail seed 7000028 a hot-started dual simplex after a trial
change of bounds stopped with one small primal and dual infeasibility left once its cost
perturbation was removed (status Unknown), and the restore's hot start from that state did
the same; the same programs solved cold are infeasible and optimal. HiGHS reports modest
coefficient ranges (retail: matrix 2e-3 … 2e4, costs 1e-3 … 2e3, bounds and right-hand
sides up to 4e4), so the programs are left to HiGHS's own scaling; explicit zeros are not
passed on. Scaling does not cure it: over retail seeds 7000000–7000199 a hot start ended
Unknown on 6 seeds with HiGHS's default equilibration and on 5 with its max-value scaling.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from invalloc.sim.network import Network
from invalloc.sim.policy import PolicyError

#: Re-solves of the plan that forbid orders below a supplier's minimum order quantity.
MOQ_ROUNDS = 8
#: Re-solves of the plan that make lanes without an allocation decision sell what they would.
SALES_ROUNDS = 3
#: Whole units: a planned quantity within this of the next unit counts as that unit.
UNIT_TOLERANCE = 1e-6
#: How a program is solved, tried in this order until HiGHS reports it optimal: dual simplex
#: hot-started from the solver's last state (after a change of bounds), from the last optimal
#: basis set afresh, then cold (presolve, no basis) by dual simplex, by interior point with
#: crossover and by primal simplex (last: on retail's plan program it takes minutes where the
#: dual simplex takes a second). A hot start after a change of bounds can end in status Unknown
#: (retail seed 7000028: small primal and dual infeasibilities left after the cost perturbation
#: is removed) where a cold solve of the same program is optimal.
SOLVE_STRATEGIES = ("warm", "basis", "dual", "ipm", "primal")
COLD_STRATEGIES = ("dual", "ipm", "primal")


@contextlib.contextmanager
def _quiet_stdout():
    """Silence writes to file descriptor 1 (C libraries' own prints) inside the block.

    The CLI's ``--json`` output must stay the only thing on standard output.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class ProgramError(RuntimeError):
    """The episode program (or a trial change of its bounds) has no optimal solution that HiGHS
    could find; the message says why (each attempt's status)."""


@dataclass(frozen=True)
class Attempt:
    """One run of HiGHS on an episode program."""

    solve: int  # the program's solve it belongs to (1, 2, …)
    strategy: str  # one of SOLVE_STRATEGIES
    status: str  # HiGHS model status ("Optimal", "Infeasible", "Unknown", …)
    seconds: float  # wall clock
    trial: bool  # bounds changed on trial: a failure there is expected, the caller restores them


class OracleSolveError(PolicyError):
    """The oracle could not plan an episode: no solver strategy solved its program. One line.

    Not bad input, so commands exit with 1.
    """

    exit_code = 1


def _set_strategy(highs: highspy.Highs, strategy: str) -> None:
    """Options of one strategy of :data:`SOLVE_STRATEGIES` (simplex strategy 1 is dual, 4 primal)."""
    ipm = strategy == "ipm"
    highs.setOptionValue("solver", "ipm" if ipm else "simplex")
    highs.setOptionValue("simplex_strategy", 4 if strategy == "primal" else 1)
    highs.setOptionValue("run_crossover", "on" if ipm else "off")


def _run(highs: highspy.Highs, strategy: str, basis) -> highspy.HighsModelStatus:
    """Run HiGHS with ``strategy``; its options are back to the dual simplex afterwards."""
    if strategy == "basis":
        highs.setBasis(basis)
    elif strategy in COLD_STRATEGIES:
        highs.clearSolver()  # forget the basis: presolve and start from scratch
    _set_strategy(highs, "dual" if strategy in ("warm", "basis") else strategy)
    try:
        highs.run()
    finally:
        _set_strategy(highs, "dual")
    return highs.getModelStatus()


class _Rows:
    """A block of constraint rows (``sense`` "le" or "eq") as COO triplets."""

    def __init__(self, shape: tuple[int, ...], sense: str, rhs: float | np.ndarray = 0.0) -> None:
        self.index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        self.rhs = np.array(np.broadcast_to(np.asarray(rhs, dtype=float), shape), dtype=float)
        self.sense = sense
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: float | np.ndarray = 1.0) -> None:
        """``rows`` += ``vals`` × ``cols`` (index arrays broadcast together)."""
        rows, cols, vals = np.broadcast_arrays(rows, cols, np.asarray(vals, dtype=float))
        if rows.size:
            self.rows.append(rows.ravel())
            self.cols.append(cols.ravel())
            self.vals.append(vals.ravel())

    def lag(self, rows: np.ndarray, cols: np.ndarray, lag: int, vals: float | np.ndarray = 1.0) -> None:
        """``rows[t]`` += ``vals`` × ``cols[t - lag]`` (time on the first axis of both)."""
        n = rows.shape[0]
        if 0 <= lag < n:
            self.add(rows[lag:], cols[: n - lag], vals)


class _Program:
    """Variables, reward coefficients and row blocks of one linear program (maximised)."""

    def __init__(self) -> None:
        self.size = 0
        self._lower: list[np.ndarray] = []
        self._upper: list[np.ndarray] = []
        self._reward: list[tuple[np.ndarray, np.ndarray]] = []
        self.blocks: list[_Rows] = []
        self.constant = 0.0  # reward that no decision changes
        self._highs = None
        self._basis = None  # HiGHS basis of the last optimal solution
        #: Every solver attempt, in order.
        self.attempts: list[Attempt] = []
        self._solves = 0

    def var(self, shape: tuple[int, ...], lower: float | np.ndarray = 0.0, upper: float | np.ndarray = np.inf):
        size = int(np.prod(shape))
        index = np.arange(self.size, self.size + size, dtype=np.int64).reshape(shape)
        self._lower.append(np.broadcast_to(np.asarray(lower, dtype=float), shape).ravel())
        self._upper.append(np.broadcast_to(np.asarray(upper, dtype=float), shape).ravel())
        self.size += size
        return index

    def reward(self, index: np.ndarray, value: float | np.ndarray) -> None:
        index, value = np.broadcast_arrays(index, np.asarray(value, dtype=float))
        self._reward.append((index.ravel(), value.ravel()))

    def rows(self, shape: tuple[int, ...], sense: str, rhs: float | np.ndarray = 0.0) -> _Rows:
        block = _Rows(shape, sense, rhs)
        self.blocks.append(block)
        return block

    def assemble(self) -> None:
        """Build the sparse matrices; rows without coefficients are checked and dropped."""
        self.objective = np.zeros(self.size)
        for index, value in self._reward:
            np.add.at(self.objective, index, value)
        self.lower = np.concatenate(self._lower) if self._lower else np.zeros(0)
        self.upper = np.concatenate(self._upper) if self._upper else np.zeros(0)
        parts: dict[str, list] = {"le": [], "eq": []}
        for block in self.blocks:
            if not block.rows:
                rhs = block.rhs.ravel()
                self._check_empty(block.sense, rhs)
                continue
            rows = np.concatenate(block.rows)
            cols = np.concatenate(block.cols)
            vals = np.concatenate(block.vals)
            # Zeros from broadcasting (SKUs a lane does not offer, …) are not passed on.
            nonzero = vals != 0.0
            rows, cols, vals = rows[nonzero], cols[nonzero], vals[nonzero]
            rhs = block.rhs.ravel()
            used = np.bincount(rows, minlength=rhs.size) > 0
            if block.sense == "le":
                used &= np.isfinite(rhs)
            self._check_empty(block.sense, rhs[~used])
            renumber = np.cumsum(used) - 1
            keep = used[rows]
            parts[block.sense].append((renumber[rows[keep]], cols[keep], vals[keep], rhs[used]))
        self.matrices = {}
        for sense, blocks in parts.items():
            offset, rows, cols, vals, rhs = 0, [], [], [], []
            for r, c, v, b in blocks:
                rows.append(r + offset)
                cols.append(c)
                vals.append(v)
                rhs.append(b)
                offset += b.size
            if offset:
                matrix = sp.csr_matrix(
                    (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(offset, self.size)
                )
                matrix.eliminate_zeros()  # terms that cancelled when duplicates were summed
                self.matrices[sense] = (matrix, np.concatenate(rhs))
            else:
                self.matrices[sense] = (None, None)

    @staticmethod
    def _check_empty(sense: str, rhs: np.ndarray) -> None:
        bad = rhs < -1e-9 if sense == "le" else np.abs(rhs) > 1e-9
        if bad.any():
            raise ProgramError("a constraint no decision can satisfy")

    def _pass_model(self) -> highspy.Highs:
        blocks = [m for m, _ in self.matrices.values() if m is not None]
        matrix = sp.vstack(blocks).tocsc() if blocks else sp.csc_matrix((0, self.size))
        le_rhs, eq_rhs = (self.matrices[k][1] for k in ("le", "eq"))
        le_rhs = np.zeros(0) if le_rhs is None else le_rhs
        eq_rhs = np.zeros(0) if eq_rhs is None else eq_rhs
        model = highspy.HighsLp()
        model.num_col_ = self.size
        model.num_row_ = matrix.shape[0]
        model.col_cost_ = -self.objective
        model.col_lower_ = self.lower
        model.col_upper_ = self.upper
        model.row_lower_ = np.r_[np.full(le_rhs.size, -np.inf), eq_rhs]
        model.row_upper_ = np.r_[le_rhs, eq_rhs]
        model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        model.a_matrix_.start_ = matrix.indptr
        model.a_matrix_.index_ = matrix.indices
        model.a_matrix_.value_ = matrix.data
        with _quiet_stdout():  # HiGHS prints a banner on construction, before any option
            highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        _set_strategy(highs, "dual")
        highs.passModel(model)
        return highs

    def solve(self, tentative: bool = False) -> tuple[np.ndarray, float]:
        """Optimal point and reward (including :attr:`constant`).

        The first call passes the model; later calls re-solve after :meth:`set_bounds`
        changed bounds. The strategies of :data:`SOLVE_STRATEGIES` are tried in turn until
        HiGHS reports the program optimal (a hot start from the solver's last state, the last
        optimal basis set afresh, then cold solves with presolve by dual simplex, interior
        point with crossover and primal simplex); no other status is accepted. Every attempt is recorded in
        :attr:`attempts`.

        :param tentative: the bounds were changed on trial and the caller restores them when
            the program fails: an attempt that finds it infeasible ends the attempts (as any
            failure did before the fallbacks existed, so plans stay as they were).
        :raises ProgramError: no strategy solved it (naming each attempt's status).
        """
        if self._highs is None:
            self._highs = self._pass_model()
        highs = self._highs
        self._solves += 1
        tried = []
        for strategy in SOLVE_STRATEGIES:
            if strategy in ("warm", "basis") and self._basis is None:
                continue  # the first solve: nothing to start from
            began = time.perf_counter()
            status = _run(highs, strategy, self._basis)
            name = highs.modelStatusToString(status)
            self.attempts.append(Attempt(self._solves, strategy, name, time.perf_counter() - began, tentative))
            tried.append(f"{strategy}: {name}")
            if status == highspy.HighsModelStatus.kOptimal:
                self._basis = highs.getBasis()
                solution = np.asarray(highs.getSolution().col_value)
                return solution, float(-highs.getInfo().objective_function_value + self.constant)
            if tentative and status == highspy.HighsModelStatus.kInfeasible:
                break
        raise ProgramError(", ".join(tried))

    def set_bounds(self, index: np.ndarray, lower: float | None = None, upper: float | None = None) -> None:
        """Change the bounds of variables ``index`` (before the next :meth:`solve`)."""
        index = np.asarray(index, dtype=np.int32).ravel()
        if lower is not None:
            self.lower[index] = lower
        if upper is not None:
            self.upper[index] = upper
        if self._highs is not None and index.size:
            self._highs.changeColsBounds(index.size, index, self.lower[index], self.upper[index])


@dataclass
class _State:
    """What the program starts from: the simulator at a decision point, before it acts."""

    start: int  # absolute period of the first planned decision
    periods: int  # periods planned
    demand: np.ndarray  # (n, T, S)
    on_hand: np.ndarray  # (D, S)
    on_hand_expiry: np.ndarray  # (D, S, K) first period in which each layer is expired
    on_hand_layers: np.ndarray  # (D, S, K) units per layer
    pipeline: np.ndarray  # (n, D, S) units already in transit, by arrival period
    pipeline_expiry: np.ndarray  # (n, D, S)
    backlog: np.ndarray  # (T, S)
    cash: float
    payables: dict[int, float]  # absolute due period → money
    receivables: dict[int, float]
    pending: dict[int, np.ndarray]  # absolute release period → (P, S) held orders

    @classmethod
    def read(cls, simulator) -> _State:
        network: Network = simulator.network
        start = int(simulator.period)
        n = int(simulator.periods) - start
        ring = network.max_lead_time + 1
        slots = (start + np.arange(n)) % ring
        in_ring = np.arange(n) < ring
        pipeline = simulator.pipeline(n) if n else np.zeros((0, *simulator.on_hand.shape))
        expiry = simulator.transit_expires[slots].astype(float)
        expiry[~in_ring] = np.inf
        receivables = {int(k): float(v) for k, v in simulator.receivables.items() if v}
        # Goods already on their way to customers are invoiced on delivery, then paid after
        # the channel's terms.
        revenue = simulator.delivery_revenue
        terms = network.channel_payment_periods[network.sales_channel]
        for i in range(min(n, ring)):
            for a in np.flatnonzero(revenue[(start + i) % ring]):
                due = start + i + int(terms[a])
                receivables[due] = receivables.get(due, 0.0) + float(revenue[(start + i) % ring, a])
        layers = simulator.layers
        return cls(
            start=start,
            periods=n,
            demand=np.asarray(simulator.tier_demand[start:], dtype=float),
            on_hand=simulator.on_hand.copy(),
            on_hand_expiry=layers.expires.astype(float),
            on_hand_layers=layers.quantity.copy(),
            pipeline=np.asarray(pipeline, dtype=float),
            pipeline_expiry=expiry,
            backlog=simulator.backlog.copy(),
            cash=float(simulator.cash),
            payables={int(k): float(v) for k, v in simulator.payables.items() if v},
            receivables=receivables,
            pending={int(k): np.asarray(v, dtype=float) for k, v in simulator.pending_approval.items()},
        )


def _dues(amounts: dict[int, float], start: int, n: int) -> np.ndarray:
    """Money falling due per planned period (n,), from ``{absolute period: amount}``."""
    out = np.zeros(n)
    for due, amount in amounts.items():
        if start <= due < start + n:
            out[due - start] += amount
    return out


class EpisodeProgram:
    """The linear program of the rest of an episode (see the module docstring).

    :param relaxed: True for the bound (every rule relaxed to a valid upper bound), False
        for the executable plan.
    :param lanes_used: (n, P) bool, the purchase lanes the plan expects to order on in each
        period: their fixed order costs are reserved in its money limits (default: all).
    """

    def __init__(self, network: Network, state: _State, relaxed: bool, lanes_used: np.ndarray | None = None) -> None:
        self.network = network
        self.state = state
        self.relaxed = relaxed
        self.lanes_used = lanes_used
        self.program = _Program()
        self._build()
        self.program.assemble()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:  # noqa: C901 - one program, written top to bottom
        net, st, lp = self.network, self.state, self.program
        self.mode = None
        self.slacks: list[np.ndarray] = []  # penalised slack of the plan's stated rules
        sc = net.scenario
        relaxed = self.relaxed
        n, start = st.periods, st.start
        n_loc, n_sku, n_tier = len(net.locations), net.n_skus, len(net.tiers)
        n_purchase, n_transfer, n_sales = len(net.purchase_location), len(net.transfer_source), len(net.sales_location)
        gamma = sc.episode.discount ** (start + np.arange(n, dtype=float))  # (n,)
        g3 = gamma[:, None, None]
        lost_sales = sc.episode.unmet_demand == "lost_sales"
        rules = sc.rules
        fixed_cost = net.purchase_fixed_cost
        used = np.ones((n, n_purchase), dtype=bool) if self.lanes_used is None else self.lanes_used
        fixed_now = (used * fixed_cost[None, :]).sum(axis=1)  # (n,) fixed order costs the plan reserves
        approval = rules.purchase_approval
        delays = approval is not None and approval.action == "delay"
        delay = approval.delay_periods if delays else 0

        # ---- purchase options: (lane, lead time, share of the ordered units that arrives)
        o_lane, o_lead, o_share = [], [], []
        for p, sampler in enumerate(net.purchase_lead_time):
            leads = np.unique(sampler.values) if relaxed else [int(sampler.maximum)]
            for lead in leads:
                o_lane.append(p)
                o_lead.append(int(lead))
                o_share.append(1.0 if relaxed else float(net.purchase_reliability[p]))
        o_lane, o_lead, o_share = np.array(o_lane, dtype=int), np.array(o_lead, dtype=int), np.array(o_share)
        o_dest = net.purchase_location[o_lane]
        unit_cost = net.purchase_unit_cost * net.purchase_offered  # (P, S)
        usable = net.purchase_offered[o_lane].copy()
        if not relaxed:
            # The plan buys perishables only on lanes with fixed lead times where it can: an
            # early or late arrival ages the stock that FIFO then sends on.
            random = np.array([not net.purchase_lead_time[p].is_fixed for p in o_lane], dtype=bool)
            fixed_offer = np.zeros(n_sku, dtype=bool)
            for p in range(n_purchase):
                if net.purchase_lead_time[p].is_fixed:
                    fixed_offer |= net.purchase_offered[p]
            usable[random[:, None] & (net.shelf_life > 0)[None, :] & fixed_offer[None, :]] = False
        v = lp.var((n, len(o_lane), n_sku), upper=np.where(usable, np.inf, 0.0))
        # The plan's requests are whole units: orders rounded to the nearest unit, transfers
        # up (see :meth:`requests`); its limits keep room for that.
        whole = net.integer_units.astype(float)
        rounding = 0.0 if relaxed else 1.0
        order_room = rounding * 0.5 * (net.purchase_offered * whole[None, :])  # (P, S) units
        order_money = (order_room * unit_cost).sum(axis=1)  # (P,)
        # Economic reward: goods and freight when shipped (the expected share under the plan).
        lp.reward(v, -g3 * o_share[None, :, None] * (unit_cost[o_lane] + net.purchase_shipping_cost[o_lane, None]))
        if delays:
            # A lane's shipments are the orders placed now plus those held for approval
            # ``delay`` periods ago (``now`` and ``held``, units of the order).
            lane_usable = np.zeros((n_purchase, n_sku), dtype=bool)
            np.logical_or.at(lane_usable, o_lane, usable)
            release_ok = (np.arange(n) + delay < n)[:, None, None] & lane_usable[None]
            held = lp.var((n, n_purchase, n_sku), upper=np.where(release_ok, np.inf, 0.0))
            now = lp.var((n, n_purchase, n_sku), upper=np.where(lane_usable, np.inf, 0.0)[None])
            rows = lp.rows((n, n_purchase, n_sku), "eq", 0.0)
            rows.add(rows.index[:, o_lane, :], v, 1.0)
            rows.add(rows.index, now, -1.0)
            rows.lag(rows.index, held, delay, -1.0)
        # Orders already held for approval ship when released (at the longest lead time in the plan).
        released = np.zeros((n, n_purchase, n_sku))
        for release, orders in st.pending.items():
            if start <= release < start + n:
                released[release - start] += orders

        # ---- transfer options
        x_lane, x_lead = [], []
        for lane, sampler in enumerate(net.transfer_lead_time):
            for lead in np.unique(sampler.values) if relaxed else [int(sampler.maximum)]:
                x_lane.append(lane)
                x_lead.append(int(lead))
        x_lane, x_lead = np.array(x_lane, dtype=int), np.array(x_lead, dtype=int)
        x_src, x_dst = net.transfer_source[x_lane], net.transfer_destination[x_lane]
        x = lp.var((n, len(x_lane), n_sku))
        lp.reward(x, -g3 * net.transfer_shipping_cost[x_lane][None, :, None])

        # ---- sales: units shipped per sales lane (``y``) and served per tier (``z``). A channel's
        # lanes ship what its tiers are served; how a lane's units split over the tiers is
        # free (any split is a transportation problem without limits), so it is left out.
        n_channel = len(net.channels)
        price = net.tier_price()  # (T, S)
        penalty = net.tier_penalty
        y = lp.var((n, n_sales, n_sku))
        lp.reward(y, -g3 * net.sales_shipping_cost[None, :, None])
        z = lp.var((n, n_tier, n_sku), upper=st.demand if lost_sales else np.inf)
        value = price + (penalty[:, None] if lost_sales else 0.0)
        lp.reward(z, g3 * value[None])
        if lost_sales:
            lp.constant -= float((gamma[:, None, None] * penalty[None, :, None] * st.demand).sum())
        rows = lp.rows((n, n_channel, n_sku), "eq", 0.0)
        rows.add(rows.index[:, net.sales_channel, :], y, 1.0)
        rows.add(rows.index[:, net.tier_channel, :], z, -1.0)

        # ---- stock
        perishable = net.shelf_life > 0
        on_hand = lp.var((n, n_loc, n_sku))
        lp.reward(on_hand, -g3 * net.holding_cost[None])
        expired = lp.var((n, n_loc, n_sku), upper=np.where(perishable, np.inf, 0.0)[None, None, :])
        if not lost_sales:
            backlog = lp.var((n, n_tier, n_sku))
            lp.reward(backlog, -g3 * penalty[None, :, None])

        # Balance: I[t] = I[t-1] - w[t-1] - out[t] + arrivals[t] - sales[t].
        rhs = st.pipeline.copy()
        rhs[0] += st.on_hand
        balance = lp.rows((n, n_loc, n_sku), "eq", rhs)
        b = balance.index
        balance.add(b, on_hand, 1.0)
        balance.lag(b, on_hand, 1, -1.0)
        balance.lag(b, expired, 1, 1.0)
        balance.add(b[:, x_src, :], x, 1.0)
        balance.add(b[:, net.sales_location, :], y, 1.0)
        for o in range(len(o_lane)):
            balance.lag(b[:, o_dest[o], :], v[:, o, :], o_lead[o], -o_share[o])
        for k in range(len(x_lane)):
            balance.lag(b[:, x_dst[k], :], x[:, k, :], x_lead[k], -1.0)
        # Released held orders arrive after the lane's (longest) lead time.
        for p in range(n_purchase):
            lead = int(net.purchase_lead_time[p].maximum if not relaxed else net.purchase_lead_time[p].values.min())
            for t in np.flatnonzero(released[:, p].sum(axis=1)):
                if t + lead < n:
                    balance.rhs[t + lead, net.purchase_location[p]] += released[t, p]
            lp.constant -= float(
                (gamma[:, None] * released[:, p] * (unit_cost[p] + net.purchase_shipping_cost[p])).sum()
            )

        # Transfers leave from the on hand at the start of the period (before its arrivals),
        # which is also never negative (expiry ≤ stock). The plan keeps reserves out of it.
        reserve = net.reserve_quantity
        source = lp.rows((n, n_loc, n_sku), "le", 0.0)
        s_idx = source.index
        source.rhs[0] += st.on_hand
        source.add(s_idx[:, x_src, :], x, 1.0)
        source.lag(s_idx, on_hand, 1, -1.0)
        source.lag(s_idx, expired, 1, 1.0)
        # Penalty per unit of slack in the plan's rules: far above any unit's margin.
        big = 10.0 * float(max(price.max(initial=0.0), 1.0) + penalty.max(initial=0.0) + unit_cost.max(initial=0.0))
        self.big = big
        if not relaxed and (reserve > 0).any():
            sources = np.zeros(n_loc, dtype=bool)
            sources[net.transfer_source] = True
            cells = (reserve > 0) & sources[:, None]
            if cells.any():
                source.rhs[:, cells] -= reserve[cells]
                cd, cs = np.nonzero(cells)
                slack = lp.var((n, len(cd)))
                lp.reward(slack, -big)
                self.slacks.append(slack)
                source.add(s_idx[:, cd, cs], slack, -1.0)

        # Channel share: a sales lane takes at most share × (the DC's stock after arrivals),
        # which is I[t] + everything the DC sells this period.
        share = net.channel_max_share[net.sales_channel]
        limited = np.flatnonzero(share < 1.0)
        if limited.size:
            rows = lp.rows((n, limited.size, n_sku), "le", 0.0)
            r = rows.index
            for j, a in enumerate(limited):
                d = net.sales_location[a]
                rows.add(r[:, j, :], on_hand[:, d, :], -share[a])
                for other in np.flatnonzero(net.sales_location == d):
                    rows.add(r[:, j, :], y[:, other, :], (1.0 if other == a else 0.0) - share[a])

        # Reserve stock (plan only): the reserve stays on hand at every close, so sales to
        # tiers that may not use it never need it.
        if not relaxed and (reserve > 0).any():
            cd, cs = np.nonzero(reserve > 0)
            rows = lp.rows((n, cd.size), "le", -reserve[cd, cs][None, :])
            r = rows.index
            rows.add(r, on_hand[:, cd, cs], -1.0)
            slack = lp.var((n, cd.size))
            lp.reward(slack, -big)
            self.slacks.append(slack)
            rows.add(r, slack, -1.0)

        # Demand: lost sales (served ≤ demand, a bound of z) or backlog (B[t] = B[t-1] + D[t] - served[t]).
        if not lost_sales:
            rhs = st.demand.copy()
            rhs[0] += st.backlog
            rows = lp.rows((n, n_tier, n_sku), "eq", rhs)
            rows.add(rows.index, backlog, 1.0)
            rows.lag(rows.index, backlog, 1, -1.0)
            rows.add(rows.index, z, 1.0)

        # Lane capacities (units per period over all SKUs).
        rows = lp.rows((n, n_sales), "le", net.sales_capacity[None, :])
        rows.add(rows.index[:, :, None], y, 1.0)
        rows = lp.rows((n, n_transfer), "le", np.maximum(net.transfer_capacity - rounding * whole.sum(), 0.0)[None, :])
        rows.add(rows.index[:, x_lane, None], x, 1.0)
        lane_room = net.purchase_lane_capacity - order_room.sum(axis=1)
        rows = lp.rows((n, n_purchase), "le", np.maximum(lane_room[None, :] - released.sum(axis=2), 0.0))
        rows.add(rows.index[:, o_lane, None], v, 1.0)
        if delays:
            rows.add(rows.index[:, :, None], held, 1.0)
        n_supplier = len(net.suppliers)
        supplier = net.purchase_supplier
        taken = np.zeros((n, n_supplier, n_sku))
        np.add.at(taken, (slice(None), supplier), released)
        rows = lp.rows((n, n_supplier, n_sku), "le", np.maximum(net.supplier_capacity[None] - taken, 0.0))
        rows.add(rows.index[:, supplier[o_lane], :], v, 1.0)
        if delays:
            rows.add(rows.index[:, supplier, :], held, 1.0)

        # Storage: on hand + inbound + transfers in − out + new orders ≤ capacity, at the
        # decision point (the plan counts ordered units; the bound shipped ones).
        capacity = net.location_capacity
        finite = np.isfinite(capacity)
        if delays and relaxed:
            finite &= ~np.isin(np.arange(n_loc), net.purchase_location)
        if finite.any():
            pipeline_left = st.pipeline.sum(axis=2)[::-1].cumsum(axis=0)[::-1]  # (n, D) arriving ≥ t
            rhs = capacity[None, :] - pipeline_left
            rhs[0] -= st.on_hand.sum(axis=1)
            np.subtract.at(rhs, (slice(None), net.purchase_location), order_room.sum(axis=1)[None, :])
            np.subtract.at(rhs, (slice(None), net.transfer_destination), rounding * whole.sum())
            rhs[:, ~finite] = np.inf
            rows = lp.rows((n, n_loc), "le", rhs)
            r = rows.index[:, :, None]
            rows.lag(r, on_hand, 1, 1.0)
            rows.lag(r, expired, 1, -1.0)
            for o in range(len(o_lane)):
                d = o_dest[o]
                rows.add(r[:, d], v[:, o, :], 1.0)  # released held orders too (the plan is cautious)
                for m in range(1, o_lead[o] + 1):
                    rows.lag(r[:, d], v[:, o, :], m, 1.0)
            if delays:
                for p in range(n_purchase):
                    rows.add(r[:, net.purchase_location[p]], held[:, p, :], 1.0)
            for k in range(len(x_lane)):
                rows.add(r[:, x_dst[k]], x[:, k, :], 1.0)
                rows.add(r[:, x_src[k]], x[:, k, :], -1.0)
                for m in range(1, x_lead[k] + 1):
                    rows.lag(r[:, x_dst[k]], x[:, k, :], m, 1.0)
            if not relaxed:  # the plan's room for rounding must not make a full DC infeasible
                slack = lp.var((n, n_loc), upper=np.where(finite, np.inf, 0.0)[None, :])
                lp.reward(slack, -big)
                self.slacks.append(slack)
                rows.add(rows.index, slack, -1.0)

        # Purchase value of the orders placed in a period (units × unit cost).
        def add_order_value(rows: _Rows, r: np.ndarray, per_lane: bool) -> None:
            """``r`` (n,) or (n, P): += value of the orders placed in each period."""
            if delays:
                for p in range(n_purchase):
                    target = r[:, p, None] if per_lane else r[:, None]
                    rows.add(target, now[:, p, :], unit_cost[p][None, :])
                    rows.add(target, held[:, p, :], unit_cost[p][None, :])
            else:
                for o in range(len(o_lane)):
                    target = r[:, o_lane[o], None] if per_lane else r[:, None]
                    rows.add(target, v[:, o, :], unit_cost[o_lane[o]][None, :])

        safety = 0.01
        if approval is not None:
            limit = np.full(n_purchase, approval.value_limit)
            if not relaxed:
                limit = limit - fixed_cost - order_money - safety - 1e-9 * approval.value_limit
            rows = lp.rows((n, n_purchase), "le", np.maximum(limit, 0.0)[None, :])
            if delays:  # orders placed now (held ones are above the limit)
                rows.add(rows.index[:, :, None], now, unit_cost[None])
            else:
                add_order_value(rows, rows.index, per_lane=True)
            if delays and not relaxed:
                # The simulator holds a lane's whole order when its value is above the limit:
                # in a period the plan either orders now or holds (see fix_approval_modes). A
                # held order must stay above the limit once rounded; ``mode`` (fixed to 0 or 1)
                # switches that on.
                above = approval.value_limit - fixed_cost + order_money + safety + 1e-9 * approval.value_limit
                mode = lp.var((n, n_purchase), upper=0.0)
                rows = lp.rows((n, n_purchase), "le", 0.0)
                rows.add(rows.index[:, :, None], held, -unit_cost[None])
                rows.add(rows.index, mode, above[None, :])
                self.mode = mode
                self.hold_above = above  # (P,) money
        budget = rules.purchase_budget_per_period
        if budget is not None:
            limit = budget if relaxed else budget - fixed_now - order_money.sum() - safety - 1e-9 * budget
            rows = lp.rows((n,), "le", np.maximum(limit, 0.0))
            add_order_value(rows, rows.index, per_lane=False)

        # Perishables: stock alive after a close entered within its shelf life. Written for
        # each DC and for each DC together with every DC it feeds by transfers (an echelon:
        # transfers inside it move units without making them younger). Bought units are alive
        # for sl - 1 closes after arrival; transferred ones left their source at most one
        # period after arriving there. The plan dates a random-lead purchase by its shortest
        # lead time (it expires sooner) while counting on it only after the longest.
        if perishable.any():
            closes = start + np.arange(n)  # absolute period of each close
            alive_layers = st.on_hand_layers[None] * (st.on_hand_expiry[None] > (closes + 1)[:, None, None, None])
            alive = alive_layers.sum(axis=3)  # (n, D, S) stock on hand at the start still alive
            arrival = np.arange(n)
            for i in np.flatnonzero(st.pipeline.reshape(n, -1).any(axis=1)):  # arrivals at i, alive after t ≥ i
                keep = (st.pipeline_expiry[i] > (closes + 1)[:, None, None]) & (arrival >= i)[:, None, None]
                alive += st.pipeline[i][None] * keep
            feeds = np.eye(n_loc, dtype=bool)
            for _ in range(n_loc):
                for a, b in zip(net.transfer_source, net.transfer_destination, strict=True):
                    feeds[a] |= feeds[b]
            groups = np.vstack([np.eye(n_loc, dtype=bool), feeds[feeds.sum(axis=1) > 1]])  # (G, D)
            o_tag = np.array([int(net.purchase_lead_time[p].values.min()) for p in o_lane], dtype=int)
            if relaxed:
                o_tag = o_lead
            rhs = np.einsum("gd,tds->tgs", groups.astype(float), alive)
            rows = lp.rows((n, len(groups), n_sku), "le", np.where(perishable[None, None, :], rhs, np.inf))
            r = rows.index
            for j, group in enumerate(groups):
                for d in np.flatnonzero(group):
                    rows.add(r[:, j], on_hand[:, d], 1.0)
                    rows.add(r[:, j], expired[:, d], -1.0)
                for life in np.unique(net.shelf_life[perishable]):
                    skus = np.flatnonzero(net.shelf_life == life)
                    rs = r[:, j, skus]
                    for o in np.flatnonzero(group[o_dest]):
                        for m in range(o_lead[o], life - 1 + o_tag[o]):  # arrived by t, alive after t
                            rows.lag(rs, v[:, o, skus], m, -o_share[o])
                    for k in np.flatnonzero(group[x_dst] & ~group[x_src]):
                        # shipped at t - m: m ≥ lead and t - m ≥ t - sl + 3 (≥ t - sl + 2 in the first period)
                        for m in range(x_lead[k], life - 2):
                            rows.lag(rs, x[:, k, skus], m, -1.0)
                        m = life - 2
                        if x_lead[k] <= m < n and start == 0:
                            rows.add(rs[m : m + 1], x[0:1, k, skus], -1.0)
            if not relaxed:
                # The simulator cannot throw stock away: the plan only writes off units that
                # may expire at this close (bought sl - 1 periods ago, stock held at the start
                # or in transit with that expiry, or transferred units that may be that old).
                dying = (st.on_hand_layers[None] * (st.on_hand_expiry[None] == (closes + 1)[:, None, None, None])).sum(
                    axis=3
                )
                for i in np.flatnonzero(st.pipeline.reshape(n, -1).any(axis=1)):
                    dying[i:] += st.pipeline[i][None] * (st.pipeline_expiry[i][None] == (closes[i:] + 1)[:, None, None])
                rows = lp.rows((n, n_loc, n_sku), "le", np.where(perishable[None, None, :], dying, np.inf))
                r = rows.index
                rows.add(r, expired, 1.0)
                for life in np.unique(net.shelf_life[perishable]):
                    skus = np.flatnonzero(net.shelf_life == life)
                    rs = r[:, :, skus]
                    for o in range(len(o_lane)):
                        # ordered at t - m, expiring at close t for some lead time of the lane
                        for m in range(o_tag[o] + life - 1, o_lead[o] + life):
                            rows.lag(rs[:, o_dest[o]], v[:, o, skus], m, -o_share[o])
                    for k in range(len(x_lane)):
                        for m in range(x_lead[k], life - 1):  # shipped at t - m, t - m ≥ t + 2 - sl
                            rows.lag(rs[:, x_dst[k]], x[:, k, skus], m, -1.0)

        # Cash: needed for interest on credit used, and for the cash rule in the plan.
        finance = sc.finance
        rate = finance.cost_of_capital * sc.episode.period_days / 365.0
        cash_rule = (not relaxed) and rules.cash_rule and np.isfinite(finance.treasury_buffer) and n_purchase > 0
        if rate > 0 or cash_rule:
            cash = lp.var((n + 1,), lower=np.r_[st.cash, np.full(n, -np.inf)], upper=np.r_[st.cash, np.full(n, np.inf)])
            credit = lp.var((n,))
            lp.reward(credit, -gamma * rate)
            pay_terms = net.purchase_payment_periods
            # Revenue is collected after a channel's lanes deliver (the bound: its quickest lane,
            # the plan: its slowest) and its payment terms.
            collect = np.zeros(n_channel, dtype=int)
            for c in range(n_channel):
                leads = [net.sales_lead_time[a] for a in np.flatnonzero(net.sales_channel == c)]
                if leads:
                    lead = min(s.values.min() for s in leads) if relaxed else max(s.maximum for s in leads)
                    collect[c] = int(lead) + int(net.channel_payment_periods[c])
            fixed_paid = np.zeros(n)  # the plan pays the fixed costs it reserved
            if not relaxed:
                for p in range(n_purchase):
                    fixed_paid[pay_terms[p] :] += (used[:, p] * fixed_cost[p])[: max(n - pay_terms[p], 0)]
            constant = _dues(st.receivables, start, n) - _dues(st.payables, start, n) - fixed_paid
            if lost_sales:
                constant -= (penalty[None, :, None] * st.demand).sum(axis=(1, 2))
            for p in range(n_purchase):  # held orders released now are invoiced now
                for t in np.flatnonzero(released[:, p].sum(axis=1)):
                    if t + pay_terms[p] < n:
                        constant[t + pay_terms[p]] -= float(released[t, p] @ unit_cost[p])

            def add_outflows(rows: _Rows, r: np.ndarray, sign: float) -> None:
                """rows[t] += sign × (money out − money in during period t, interest aside)."""
                for o in range(len(o_lane)):
                    p = o_lane[o]
                    rows.add(r[:, None], v[:, o, :], sign * net.purchase_shipping_cost[p])
                    rows.lag(r[:, None], v[:, o, :], int(pay_terms[p]), sign * unit_cost[p][None, :])
                rows.add(r[:, None, None], x, sign * net.transfer_shipping_cost[x_lane][None, :, None])
                rows.add(r[:, None, None], y, sign * net.sales_shipping_cost[None, :, None])
                for tier in range(n_tier):
                    rows.lag(r[:, None], z[:, tier, :], int(collect[net.tier_channel[tier]]), -sign * price[tier])
                rows.add(r[:, None, None], on_hand, sign * net.holding_cost[None])
                if lost_sales:
                    rows.add(r[:, None, None], z, -sign * penalty[None, :, None])
                else:
                    rows.add(r[:, None, None], backlog, sign * penalty[None, :, None])

            # cash[t+1] = cash[t] − outflows[t] − rate·u[t]
            flow = lp.rows((n,), "eq", constant)
            f = flow.index
            flow.add(f, cash[1:], 1.0)
            flow.add(f, cash[:-1], -1.0)
            flow.add(f, credit, rate)
            add_outflows(flow, f, 1.0)
            # u[t] ≥ −(cash[t] − outflows[t])
            interest = lp.rows((n,), "le", constant)
            i_idx = interest.index
            interest.add(i_idx, credit, -1.0)
            interest.add(i_idx, cash[:-1], -1.0)
            add_outflows(interest, i_idx, 1.0)

            if cash_rule:
                # purchases[t] ≤ cash[t] + credit line − payables due within the window − buffer
                window = int(max((s.maximum for s in net.purchase_lead_time), default=0))
                due_soon = np.array(
                    [
                        sum(a for due, a in st.payables.items() if start + t <= due <= start + t + window)
                        for t in range(n)
                    ]
                )
                committed = np.array(
                    [
                        sum(
                            float((orders * unit_cost).sum() + fixed_cost[orders.sum(axis=1) > 0].sum())
                            for release, orders in st.pending.items()
                            if release >= start + t
                        )
                        for t in range(n)
                    ]
                )
                fixed_window = np.zeros(n)
                for p in range(n_purchase):
                    for m in range(max(1, pay_terms[p] - window), pay_terms[p] + 1):
                        fixed_window[m:] += (used[:, p] * fixed_cost[p])[: max(n - m, 0)]
                limit = (
                    finance.credit_line
                    - finance.treasury_buffer
                    - due_soon
                    - committed
                    - fixed_window
                    - fixed_now
                    - (window + 2) * order_money.sum()  # this period's orders and the invoices due soon, rounded
                    - safety
                )
                if delays:  # orders held for approval count as committed until released
                    for m in range(1, delay + 1):
                        limit[m:] -= fixed_now[: max(n - m, 0)]
                rows = lp.rows((n,), "le", limit)
                r = rows.index
                add_order_value(rows, r, per_lane=False)
                rows.add(r, cash[:-1], -1.0)
                if delays:
                    for p in range(n_purchase):
                        for m in range(1, delay + 1):
                            rows.lag(r[:, None], held[:, p, :], m, unit_cost[p][None, :])
                for o in range(len(o_lane)):
                    p = o_lane[o]
                    for m in range(max(1, pay_terms[p] - window), pay_terms[p] + 1):
                        rows.lag(r[:, None], v[:, o, :], m, unit_cost[p][None, :])
                slack = lp.var((n,))
                lp.reward(slack, -big)
                self.slacks.append(slack)
                rows.add(r, slack, -1.0)

        self.v, self.x, self.y, self.z, self.on_hand, self.expired = v, x, y, z, on_hand, expired
        self.now, self.held = (now, held) if delays else (None, None)
        self.backlog = None if lost_sales else backlog
        self.o_lane, self.x_lane = o_lane, x_lane

    # ------------------------------------------------------------------ solving
    def solve(self, tentative: bool = False) -> float:
        """Solve (see :meth:`_Program.solve`); the optimal value. :raises ProgramError:"""
        self.solution, self.value = self.program.solve(tentative)
        return self.value

    def orders(self) -> np.ndarray:
        """Planned purchase orders (n, P, S), in units: placed now, or held for approval."""
        values = self.solution
        if self.held is not None:
            return values[self.now] + values[self.held]
        orders = np.zeros((self.state.periods, len(self.network.purchase_location), self.network.n_skus))
        np.add.at(orders, (slice(None), self.o_lane), values[self.v])
        return orders

    def fix_approval_modes(self) -> bool:
        """Approval ``delay``: in each lane and period the plan either orders now or holds an
        order above the value limit. Two choices are solved, the better kept: hold where the
        last solution held more than the limit, or never hold."""
        if self.held is None or self.mode is None:
            return True
        values = self.solution
        cost = self.network.purchase_unit_cost * self.network.purchase_offered
        held_value = (values[self.held] * cost[None]).sum(axis=2)  # (n, P)
        now_value = (values[self.now] * cost[None]).sum(axis=2)
        holding = (held_value >= self.hold_above[None, :]) & (held_value >= now_value)

        def hold_where_held() -> None:
            self.program.set_bounds(self.mode[holding], lower=1.0, upper=1.0)
            self.program.set_bounds(self.now[holding], upper=0.0)
            self.program.set_bounds(self.held[~holding], upper=0.0)

        def never_hold() -> None:
            self.program.set_bounds(self.held, upper=0.0)

        return self._best_of([hold_where_held, never_hold] if holding.any() else [never_hold])

    @property
    def slack_used(self) -> float:
        """Units and money by which the plan had to break the rules it states (0 normally)."""
        return float(sum(self.solution[s].sum() for s in self.slacks))

    def _sales_shortfall(self) -> tuple[np.ndarray, np.ndarray]:
        """What lanes without an allocation decision would ship in the simulator (n, A, S)
        given the planned stock, and where the plan ships less (bool, same shape)."""
        net = self.network
        st, values = self.state, self.solution
        y = values[self.y]  # (n, A, S)
        sold = np.zeros(values[self.on_hand].shape)
        np.add.at(sold, (slice(None), net.sales_location), y)
        available = values[self.on_hand] + sold  # stock after arrivals
        wanted = st.demand.copy()
        if self.backlog is not None:
            wanted[0] += st.backlog
            wanted[1:] += values[self.backlog][:-1]
        left = np.zeros((st.periods, len(net.channels), net.n_skus))
        np.add.at(left, (slice(None), net.tier_channel), wanted)
        target = np.zeros(y.shape)
        for a in range(len(net.sales_location)):  # the simulator drains a channel's lanes in lane order
            c, d = net.sales_channel[a], net.sales_location[a]
            if net.sales_has_decision[a]:
                left[:, c] -= y[:, a]
                continue
            cap = net.channel_max_share[c] * available[:, d]
            cap = np.where(net.integer_units[None, :], np.floor(cap + UNIT_TOLERANCE), cap)
            total = cap.sum(axis=1, keepdims=True)
            over = total > net.sales_capacity[a]
            if over.any():  # the lane's capacity scales every SKU down alike
                scaled = cap * (net.sales_capacity[a] / np.maximum(total, 1e-12))
                scaled = np.where(net.integer_units[None, :], np.floor(scaled + UNIT_TOLERANCE), scaled)
                cap = np.where(over, scaled, cap)
            target[:, a] = np.clip(np.minimum(left[:, c], cap), 0.0, None)
            left[:, c] -= target[:, a]
        return target, (~net.sales_has_decision)[None, :, None] & (target > y + 1e-6)

    def serve_as_simulated(self) -> bool:
        """A sales lane without an allocation decision ships all it can: its channel's demand
        left by the channel's earlier lanes, up to the channel's share of the DC's stock. Where
        the plan ships less there, that much becomes a lower bound and the program is re-solved.
        False when nothing changed or the re-solve failed (the bounds are then restored)."""
        target, short = self._sales_shortfall()
        if not short.any():
            return False
        saved = self.program.lower.copy(), self.program.upper.copy()
        self.program.set_bounds(self.y[short], lower=target[short] - 1e-9)
        return self._solve_or_undo(saved)

    def enforce_minimum_orders(self) -> bool:
        """Orders below the supplier's minimum order quantity are raised to it (when at least
        half of it was planned) or forbidden, and the program re-solved. False when there were
        none, or when no re-solve succeeded (the bounds are then restored)."""
        net = self.network
        orders = self.orders()  # (n, P, S)
        minimum = net.purchase_moq[None]
        whole = net.integer_units[None, None, :]
        units = np.where(whole, np.floor(orders + 0.5 - UNIT_TOLERANCE), orders)
        small = (orders > UNIT_TOLERANCE) & (units < minimum - 1e-9)
        if not small.any():
            return False
        raise_up = small & (orders >= 0.5 * minimum)
        floor = np.broadcast_to(np.where(whole, np.ceil(minimum - 1e-9), minimum), orders.shape)
        if self.held is not None:
            held_larger = self.solution[self.held] > self.solution[self.now]
            targets = [(self.now, ~held_larger), (self.held, held_larger)]
        else:
            option = np.zeros(len(net.purchase_location), dtype=int)
            option[self.o_lane] = np.arange(len(self.o_lane))  # the plan has one option per lane
            targets = [(self.v[:, option, :], np.ones(orders.shape, dtype=bool))]

        def change(raising: np.ndarray):
            def apply() -> None:
                drop = small & ~raising
                for variables, where in targets:
                    self.program.set_bounds(variables[raising & where], lower=floor[raising & where])
                    self.program.set_bounds(variables[drop], upper=0.0)
                if self.mode is not None:
                    # What is left of a held order may fall below the approval limit (it then
                    # ships at once): better than no order at all.
                    self.program.set_bounds(self.mode[drop.any(axis=2)], lower=0.0, upper=0.0)

            return apply

        changes = [change(np.zeros_like(raise_up))]
        if raise_up.any():
            changes.insert(0, change(raise_up))
        return self._best_of(changes)

    def executable(self) -> bool:
        """True when the solution can be requested as it is: whole-unit decisions are whole
        and lanes without an allocation decision ship what the simulator would."""
        net = self.network
        parts = [self.orders(), self.solution[self.x], self.solution[self.y]]
        for part in parts:
            whole = np.broadcast_to(net.integer_units, part.shape)
            if (np.abs(part - np.round(part))[whole] > UNIT_TOLERANCE).any():
                return False
        return not self._sales_shortfall()[1].any()

    def _restore(self, bounds: tuple[np.ndarray, np.ndarray]) -> None:
        lower, upper = bounds
        changed = np.flatnonzero((self.program.lower != lower) | (self.program.upper != upper))
        self.program.lower[changed], self.program.upper[changed] = lower[changed], upper[changed]
        self.program.set_bounds(changed)

    def _best_of(self, changes) -> bool:
        """Solve the program after each change of bounds (functions applying one), each from
        the current bounds, and keep the best that solves; False (bounds and solution as
        before) when none does."""
        base = self.program.lower.copy(), self.program.upper.copy()
        best = None
        for apply in changes:
            apply()
            try:
                value = self.solve(tentative=True)
            except ProgramError:
                value = None
            if value is not None and (best is None or value > best[0]):
                best = (value, self.program.lower.copy(), self.program.upper.copy())
            self._restore(base)
        if best is not None:
            self._restore(best[1:])
        self.solve()
        return best is not None

    def _solve_or_undo(self, saved: tuple[np.ndarray, np.ndarray]) -> bool:
        """Re-solve after a change of bounds; if that fails, restore ``saved`` bounds and
        the previous solution, and return False."""
        try:
            self.solve(tentative=True)
            return True
        except ProgramError:
            lower, upper = saved
            changed = np.flatnonzero((self.program.lower != lower) | (self.program.upper != upper))
            self.program.lower[changed], self.program.upper[changed] = lower[changed], upper[changed]
            self.program.set_bounds(changed)
            self.solve()
            return False

    def requests(self) -> np.ndarray:
        """Requested quantities per planned period (n, n_decisions), in units."""
        net = self.network
        n = self.state.periods
        values = self.solution
        orders = self.orders()
        transfers = np.zeros((n, len(net.transfer_source), net.n_skus))
        np.add.at(transfers, (slice(None), self.x_lane), values[self.x])
        allocations = values[self.y]
        # Whole units: orders and allocations to the nearest unit, transfers up (a regional DC
        # whose sales are capped at a share of its stock then has the stock the plan counts on).
        # The plan program kept room for this in every limit it states.
        whole = net.integer_units
        orders = np.where(whole, np.floor(orders + 0.5 - UNIT_TOLERANCE), orders)
        # An order still below the supplier's minimum would be dropped by the feasibility layer.
        orders[orders < net.purchase_moq[None] - 1e-9] = 0.0
        transfers = np.where(whole, np.ceil(transfers - UNIT_TOLERANCE), transfers)
        allocations = np.where(whole, np.floor(allocations + 0.5 - UNIT_TOLERANCE), allocations)
        requests = np.zeros((n, net.n_decisions))
        for kind, lane, skus, span in net.decision_blocks:
            source = {"order": orders, "transfer": transfers, "allocate": allocations}[kind]
            requests[:, span] = source[:, lane, skus]
        return np.maximum(requests, 0.0)

    @staticmethod
    def needs_separate_plan(network: Network) -> bool:
        """True when the bound relaxes a rule that the executable plan must respect."""
        sc = network.scenario
        rules = sc.rules
        samplers = network.purchase_lead_time + network.transfer_lead_time
        return bool(
            (rules.cash_rule and np.isfinite(sc.finance.treasury_buffer) and len(network.purchase_location))
            or (network.reserve_quantity > 0).any()
            or rules.purchase_approval is not None
            or (rules.purchase_budget_per_period is not None and (network.purchase_fixed_cost > 0).any())
            or any(not s.is_fixed for s in samplers)
            or (network.purchase_reliability < 1).any()
            or (network.purchase_moq > 0).any()
        )


class OraclePolicy:
    """Hindsight-optimal plan of each episode (see the module docstring).

    ``bound`` is the optimal value of the bound program of the current episode (the total
    discounted reward on the scenario's basis that no policy can exceed on that seed);
    ``bounds`` keeps one per planned episode. ``plan_value`` is the plan program's own
    value (equal to the bound when one program serves both). ``attempts`` lists the solver
    attempts of the last plan per program (``"bound"``, ``"plan"``), each an :class:`Attempt`.

    :raises OracleSolveError: (a :class:`PolicyError`, from :meth:`act`) when no strategy
        solves the bound program or the plan program; one line naming the seed.
    """

    name = "oracle"

    def __init__(self) -> None:
        self.bounds: list[float] = []
        self.bound: float | None = None
        self.plan_value: float | None = None
        self.plan_slack = 0.0
        self.solve_seconds = 0.0
        self.attempts: dict[str, list[Attempt]] = {}
        self._requests: np.ndarray | None = None
        self._start = 0
        self._seed: int | None = None

    def reset(self, network: Network, seed: int | None = None) -> None:
        if network.scenario.episode.reward_basis != "economic":
            raise PolicyError(
                "--policy oracle: bounds the economic reward basis only "
                f"(scenario '{network.scenario.name}' uses reward_basis: {network.scenario.episode.reward_basis})"
            )
        self.network = network
        self.bound = None
        self.plan_value = None
        self._requests = None
        self._seed = seed

    @property
    def bound_of_last_episode(self) -> float | None:
        return self.bounds[-1] if self.bounds else None

    def plan(self, simulator) -> None:
        """Solve the episode from the simulator's current state with its realised demand.

        :raises OracleSolveError: no solver strategy solved one of the programs.
        """
        began = time.perf_counter()
        network = simulator.network
        self.network = network
        self.attempts = {}
        state = _State.read(simulator)
        stage = "bound"
        try:
            bound = EpisodeProgram(network, state, relaxed=True)
            self.attempts["bound"] = bound.program.attempts
            self.bound = bound.solve()
            program = bound
            if EpisodeProgram.needs_separate_plan(network) or not bound.executable():
                stage = "plan"
                lanes_used = bound.orders().sum(axis=2) > UNIT_TOLERANCE
                program = EpisodeProgram(network, state, relaxed=False, lanes_used=lanes_used)
                self.attempts["plan"] = program.program.attempts
                program.solve()
                program.fix_approval_modes()
                for _ in range(SALES_ROUNDS):
                    if not program.serve_as_simulated():
                        break
                for _ in range(MOQ_ROUNDS):
                    if not program.enforce_minimum_orders():
                        break
        except ProgramError as error:
            seed = "" if self._seed is None else f"seed {self._seed}, "
            raise OracleSolveError(
                f"--policy oracle: {seed}period {state.start}: the episode's {stage} program could not be "
                f"solved ({error}); please report the scenario and seed"
            ) from None
        # The plan program's own value, without the penalties of any rule it had to break.
        self.plan_value = program.value + (program.big * program.slack_used if program is not bound else 0.0)
        self.plan_slack = program.slack_used if program is not bound else 0.0
        self._requests = program.requests()
        self._start = state.start
        self.bounds.append(self.bound)
        self.solve_seconds = time.perf_counter() - began

    def act(self, simulator) -> np.ndarray:
        if self._requests is None or not 0 <= simulator.period - self._start < len(self._requests):
            self.plan(simulator)
        requests = self._requests[simulator.period - self._start].copy()
        if simulator.network.scenario.episode.backorder_replenishment:
            # Open (backordered) requests are added to this period's request by the simulator.
            requests = np.maximum(requests - simulator.open_requests, 0.0)
        return requests
