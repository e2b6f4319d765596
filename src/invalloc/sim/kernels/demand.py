"""Customers' demand drawn at reset: the draws put in place and split over tiers, compiled.

The ``draw_…`` kernels draw the random numbers themselves, with :mod:`invalloc.sim.kernels.draws`
(the numbers numpy's ``Generator`` would draw, in the same order, from the borrowed state
array ``state``, loaded at the kernel's start and written back at its end); the other loops
move numbers numpy drew. Either way they make the same additions in the same order as the
numpy code they replace (:mod:`invalloc.sim.demand`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.sim.kernels.draws import (
    POISSON_LAM_MAX,
    binomial_from_table,
    gamma_from_constants,
    load_state,
    normal,
    poisson_multiplication,
    poisson_ptrs,
    ptrs_constants,
    store_state,
)


@njit(cache=True, error_model="numpy", nogil=True)
def add_tier_draws(tiers, members, columns, draws):
    """``tiers[:, members[:, None], columns[None, :]] += draws`` (H, M, k) (no index repeats)."""
    for h in range(draws.shape[0]):
        for m in range(draws.shape[1]):
            t = members[m]
            for j in range(draws.shape[2]):
                tiers[h, t, columns[j]] += draws[h, m, j]


@njit(cache=True, error_model="numpy", nogil=True)
def whole_counts(total):
    """``total.astype(np.int64)`` of one channel's demand (H, S)."""
    remaining = np.empty(total.shape, dtype=np.int64)
    for h in range(total.shape[0]):
        for s in range(total.shape[1]):
            remaining[h, s] = np.int64(total[h, s])
    return remaining


@njit(cache=True, error_model="numpy", nogil=True)
def nonzero_counts(remaining):
    """``remaining[remaining != 0]``: the counts to split, in C order."""
    count = 0
    for h in range(remaining.shape[0]):
        for s in range(remaining.shape[1]):
            if remaining[h, s] != 0:
                count += 1
    out = np.empty(count, dtype=np.int64)
    i = 0
    for h in range(remaining.shape[0]):
        for s in range(remaining.shape[1]):
            if remaining[h, s] != 0:
                out[i] = remaining[h, s]
                i += 1
    return out


@njit(cache=True, error_model="numpy", nogil=True)
def add_tier_split(tiers, member, remaining, draws, last, total, share, integer, all_integer):
    """One tier's part of a channel's demand added to ``tiers[:, member, :]``.

    The tier's whole units are ``draws`` at the non-zero counts of ``remaining`` (in C order;
    zero elsewhere), or all of ``remaining`` for the channel's ``last`` tier; ``remaining``
    loses them. SKUs not counted in whole units (unless ``all_integer``) get ``total × share``.
    """
    i = 0
    for h in range(remaining.shape[0]):
        for s in range(remaining.shape[1]):
            if last:
                whole = remaining[h, s]
            elif remaining[h, s] != 0:
                whole = draws[i]
                i += 1
                remaining[h, s] -= whole
            else:
                whole = 0
            if all_integer or integer[s]:
                tiers[h, member, s] += whole
            else:
                tiers[h, member, s] += total[h, s] * share


@njit(cache=True, error_model="numpy", nogil=True)
def add_channel_total(tiers, member, total):
    """``tiers[:, member, :] += total`` (H, S)."""
    for h in range(total.shape[0]):
        for s in range(total.shape[1]):
            tiers[h, member, s] += total[h, s]


@njit(cache=True, error_model="numpy", nogil=True)
def add_pro_rata(tiers, members, shares, total):
    """``tiers[:, members, :] += (total[..., None] * shares).transpose(0, 2, 1)``."""
    for h in range(total.shape[0]):
        for k in range(members.shape[0]):
            t = members[k]
            for s in range(total.shape[1]):
                tiers[h, t, s] += total[h, s] * shares[k]


@njit(cache=True, error_model="numpy", nogil=True)
def draw_poisson_tiers(state, tiers, members, columns, constants, log_factorial):
    """``tiers[:, members[:, None], columns[None, :]] += Generator.poisson(means)`` for Poisson
    means (H, M, k) given by their :func:`~invalloc.sim.kernels.draws.poisson_constants`
    ``constants`` (H·M·k, 6) in C order (no index repeats)."""
    pcg = load_state(state)
    i = 0
    for h in range(constants.shape[0] // (members.shape[0] * columns.shape[0])):
        for m in range(members.shape[0]):
            t = members[m]
            for j in range(columns.shape[0]):
                # numpy's random_poisson: PTRS from mean 10, none at 0, multiplication below. The
                # choice is made here, in the loop: through one more inlined function (returning
                # the draw and pcg from each branch) the draws ran 25-40% slower.
                lam = constants[i, 0]
                if lam >= 10:
                    loglam, b, a = constants[i, 1], constants[i, 2], constants[i, 3]
                    log_invalpha, vr = constants[i, 4], constants[i, 5]
                    units, pcg = poisson_ptrs(pcg, lam, loglam, b, a, log_invalpha, vr, log_factorial)
                elif lam == 0:
                    units = 0
                else:
                    units, pcg = poisson_multiplication(pcg, constants[i, 1])
                tiers[h, t, columns[j]] += units
                i += 1
    store_state(state, pcg)


@njit(cache=True, error_model="numpy", nogil=True)
def draw_negative_binomial_tiers(
    state, tiers, members, columns, positive, gamma_shape, gamma_scale, gamma_constants, shares, rate, log_factorial
):
    """Negative binomial demand of one stream added to ``tiers`` as gamma–Poisson draws.

    First every rate (H, k) in C order: ``Generator.gamma(gamma_shape, gamma_scale)`` (the
    shapes' :func:`~invalloc.sim.kernels.draws.gamma_constants` ``gamma_constants`` (H·k, 2)),
    kept where ``positive``, else 0 (written to ``rate``); then ``Generator.poisson(rate × shares)``
    (H, M, k) added to ``tiers[:, members[:, None], columns[None, :]]`` (:func:`draw_poisson_of_rates`).
    Returns False, with no Poisson drawn, when a Poisson mean exceeds numpy's limit (numpy
    refuses it).
    """
    pcg = load_state(state)
    for h in range(positive.shape[0]):
        for j in range(positive.shape[1]):
            i = h * positive.shape[1] + j
            drawn, pcg = gamma_from_constants(pcg, gamma_shape[h, j], gamma_scale[h, j], gamma_constants, i)
            rate[h, j] = drawn if positive[h, j] else 0.0
    store_state(state, pcg)
    for h in range(rate.shape[0]):
        for m in range(shares.shape[0]):
            for j in range(rate.shape[1]):
                if rate[h, j] * shares[m] > POISSON_LAM_MAX:
                    return False
    draw_poisson_of_rates(state, tiers, members, columns, rate, shares, log_factorial)
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def draw_poisson_of_rates(state, tiers, members, columns, rate, shares, log_factorial):
    """``tiers[:, members[:, None], columns[None, :]] += Generator.poisson(rate × shares)`` for
    rates (H, k) and tier shares (M,), the means in C order of (H, M, k), each at most
    :data:`~invalloc.sim.kernels.draws.POISSON_LAM_MAX` (callers check it first, as numpy does).

    numpy's ``random_poisson`` with the constants of each mean computed as it is drawn: PTRS
    from mean 10, none at 0, multiplication below.
    """
    pcg = load_state(state)
    for h in range(rate.shape[0]):
        for m in range(shares.shape[0]):
            t = members[m]
            for j in range(rate.shape[1]):
                # The choice is made in the loop, as in draw_poisson_tiers.
                lam = rate[h, j] * shares[m]
                if lam >= 10:
                    b, a, log_invalpha, vr = ptrs_constants(lam)
                    units, pcg = poisson_ptrs(pcg, lam, np.log(lam), b, a, log_invalpha, vr, log_factorial)
                elif lam == 0:
                    units = 0
                else:
                    units, pcg = poisson_multiplication(pcg, np.exp(-lam))
                tiers[h, t, columns[j]] += units
    store_state(state, pcg)


@njit(cache=True, error_model="numpy", nogil=True)
def draw_normal_channel(state, channel_demand, c, columns, means, stds, integer):
    """``channel_demand[:, c, columns] +=`` normal demand (H, k): ``Generator.normal(means, stds)``
    in C order, truncated at zero (``np.maximum``), rounded to whole units (``np.round``)
    for whole-unit SKUs."""
    pcg = load_state(state)
    for h in range(means.shape[0]):
        for j in range(columns.shape[0]):
            units, pcg = normal(pcg, means[h, j], stds[h, j])
            if not (units >= 0.0 or np.isnan(units)):
                units = 0.0
            s = columns[j]
            if integer[s]:
                units = np.rint(units)
            channel_demand[h, c, s] += units
    store_state(state, pcg)


@njit(cache=True, error_model="numpy", nogil=True)
def draw_channel_split(state, tiers, members, probabilities, rows, bounds, steps, total, shares, integer, all_integer):
    """One channel's demand ``total`` (H, S) split over its tiers ``members`` (M ≥ 2, rows of
    ``tiers``) and added to them, as :func:`whole_counts` then :func:`add_tier_split` of each
    tier in turn do, drawing the whole units of every tier but the last
    (:func:`draw_tier_split`, with ``probabilities[k]`` tabulated by
    :func:`~invalloc.sim.kernels.draws.binomial_inversion_tables`: ``rows``, ``bounds``,
    ``steps``). The last tier gets the counts left.
    """
    remaining = whole_counts(total)
    pcg = load_state(state)
    last = members.shape[0] - 1
    for k in range(last):
        table = (bounds[k, : rows[k]], steps[k])
        pcg = draw_tier_split(
            pcg, tiers, members[k], remaining, probabilities[k], *table, total, shares[k], integer, all_integer
        )
    store_state(state, pcg)
    no_draws = np.zeros(0, dtype=np.int64)
    add_tier_split(tiers, members[last], remaining, no_draws, True, total, shares[last], integer, all_integer)


@njit(cache=True, error_model="numpy", nogil=True)
def draw_tier_split(pcg, tiers, member, remaining, p, bounds, steps, total, share, integer, all_integer):
    """:func:`add_tier_split` of a tier that is not its channel's last, drawing its whole units:
    ``Generator.binomial(count, p)`` of each non-zero count of ``remaining`` in C order (the
    probability tabulated by :func:`~invalloc.sim.kernels.draws.binomial_inversion_table`).
    Returns the advanced ``pcg``."""
    for h in range(remaining.shape[0]):
        for s in range(remaining.shape[1]):
            whole = 0
            if remaining[h, s] != 0:
                whole, pcg = binomial_from_table(pcg, remaining[h, s], p, bounds, steps)
                remaining[h, s] -= whole
            if all_integer or integer[s]:
                tiers[h, member, s] += whole
            else:
                tiers[h, member, s] += total[h, s] * share
    return pcg
