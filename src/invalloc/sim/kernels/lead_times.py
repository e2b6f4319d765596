"""Lead times of a period's shipments: fixed per lane, or drawn per lane from the supply stream."""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.sim.kernels.draws import load_state, next_double, store_state


def lead_time_tables(samplers) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`draw_lead_times` reads of a list of lanes' lead-time samplers
    (:class:`~invalloc.sim.network.LeadTimeSampler`): each lane's lead time where fixed (0
    where random), the random lanes in lane order, and their inverse CDFs flattened (values,
    cumulative probabilities as the sampler sums them, each lane's first entry, the lane's total)."""
    random = [(lane, sampler) for lane, sampler in enumerate(samplers) if not sampler.is_fixed]
    fixed = np.array([sampler.values.item(0) if sampler.is_fixed else 0 for sampler in samplers], dtype=np.int64)
    values = [value for _, sampler in random for value in sampler._values]
    cumulative = [edge for _, sampler in random for edge in sampler._cumulative]
    first = np.cumsum([0] + [len(sampler._values) for _, sampler in random])
    return (
        fixed,
        np.array([lane for lane, _ in random], dtype=np.int64),
        np.array(values, dtype=np.int64),
        np.array(cumulative, dtype=np.float64),
        first.astype(np.int64),
        np.array([sampler._total for _, sampler in random], dtype=np.float64),
    )


@njit(cache=True, nogil=True)
def draw_lead_times(state, fixed, random_lanes, values, cumulative, first, total, leads):
    """Lead time per lane written to ``leads`` (lanes,) in periods: ``fixed``, and for each
    random lane in turn one uniform of the PCG64 stream ``state`` (written back advanced,
    numpy's ``random()``) on its inverse CDF: the first value whose cumulative probability
    exceeds uniform × total, else the last (:meth:`LeadTimeSampler.value_at`).

    Written into the caller's array rather than returned: handing a new array back to Python
    costs numba an unpickling of the array type on every call."""
    for lane in range(fixed.shape[0]):
        leads[lane] = fixed[lane]
    pcg = load_state(state)
    for k in range(random_lanes.shape[0]):
        u, pcg = next_double(pcg)
        u = u * total[k]
        end = first[k + 1]
        lead = values[end - 1]
        for j in range(first[k], end):
            if u < cumulative[j]:
                lead = values[j]
                break
        leads[random_lanes[k]] = lead
    store_state(state, pcg)
