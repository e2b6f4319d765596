"""Customers' demand drawn at reset: the draws put in place and split over tiers, compiled.

The random numbers are drawn by numpy (:mod:`invalloc.sim.demand`); these loops only move
them, with the same additions in the same order as the numpy code they replace.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def add_tier_draws(tiers, members, columns, draws):
    """``tiers[:, members[:, None], columns[None, :]] += draws`` (H, M, k) (no index repeats)."""
    for h in range(draws.shape[0]):
        for m in range(draws.shape[1]):
            t = members[m]
            for j in range(draws.shape[2]):
                tiers[h, t, columns[j]] += draws[h, m, j]


@njit(cache=True, error_model="numpy")
def whole_counts(total):
    """``total.astype(np.int64)`` of one channel's demand (H, S)."""
    remaining = np.empty(total.shape, dtype=np.int64)
    for h in range(total.shape[0]):
        for s in range(total.shape[1]):
            remaining[h, s] = np.int64(total[h, s])
    return remaining


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def add_channel_total(tiers, member, total):
    """``tiers[:, member, :] += total`` (H, S)."""
    for h in range(total.shape[0]):
        for s in range(total.shape[1]):
            tiers[h, member, s] += total[h, s]


@njit(cache=True, error_model="numpy")
def add_pro_rata(tiers, members, shares, total):
    """``tiers[:, members, :] += (total[..., None] * shares).transpose(0, 2, 1)``."""
    for h in range(total.shape[0]):
        for k in range(members.shape[0]):
            t = members[k]
            for s in range(total.shape[1]):
                tiers[h, t, s] += total[h, s] * shares[k]
