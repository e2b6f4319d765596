"""Random draws, bit-identical to numpy's ``Generator`` (PCG64), compiled.

numpy draws each random number through its bit generator's function pointer, one C call per
uniform; for the ~10,000 draws of a 2,000-SKU period that call, and the per-draw set-up of
each distribution, cost more than the arithmetic. Here the PCG64 generator runs inline and a
distribution's constants can be computed once per cell (:func:`poisson_constants`,
:func:`binomial_inversion_constants`) — while every draw stays the number numpy would draw:

- :func:`state_words` gives the compiled draws a ``Generator``'s PCG64 state (a view on
  numpy's own memory). A kernel loads it once into the value ``pcg`` (:func:`load_state`),
  which every draw takes and returns advanced, and writes it back at its end
  (:func:`store_state`): the ``Generator`` continues exactly where numpy's own draws would
  have left it;
- each distribution follows, step for step and in the same floating-point operations, the
  numpy C function its docstring names (``numpy/random/src/distributions/distributions.c``),
  taking the same uniforms in the same order.

``tests/test_draws.py`` checks numbers and final state against numpy over many seeds and
parameters. For a generator other than PCG64, :func:`state_words` is None: callers then draw with numpy.

The state array (``uint64[4]``): the 128-bit LCG state (low, high word), then its increment
(low, high word). These draws take only 64-bit outputs, never numpy's buffered 32-bit half.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import ir
from numba import carray, njit
from numba.core import cgutils, types
from numba.cpython._binomial import make_binomial_btpe
from numba.extending import intrinsic
from numba.np.random._constants import (
    fe_double,
    fi_double,
    ke_double,
    ki_double,
    we_double,
    wi_double,
    ziggurat_exp_r,
    ziggurat_nor_inv_r,
    ziggurat_nor_r,
)
from numba.np.random.distributions import _binomial_btpe_squeeze

#: PCG64's 128-bit LCG multiplier (numpy's ``PCG_DEFAULT_MULTIPLIER_128``), high and low word.
_MULTIPLIER_HIGH = np.uint64(0x2360ED051FC65DA4)
_MULTIPLIER_LOW = np.uint64(0x4385DF649FCCF645)
_WORD = (1 << 64) - 1
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U8 = np.uint64(8)
_U11 = np.uint64(11)
_U58 = np.uint64(58)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
_LOW_BYTE = np.uint64(0xFF)
_MANTISSA_52 = np.uint64(0x000FFFFFFFFFFFFF)
#: 2**-53: a 53-bit integer to a double in [0, 1).
_DOUBLE_UNIT = 1.0 / 9007199254740992.0
#: numpy's ``POISSON_LAM_MAX``: larger means are refused ("lam value too large").
POISSON_LAM_MAX = float(np.iinfo(np.int64).max - np.sqrt(np.iinfo(np.int64).max) * 10)
#: log(2π), as numpy's ``random_loggam`` uses it.
_LOG_2PI = 1.8378770664093453e00
_LOGGAM_SERIES = np.array(
    [
        8.333333333333333e-02,
        -2.777777777777778e-03,
        7.936507936507937e-04,
        -5.952380952380952e-04,
        8.417508417508418e-04,
        -1.917526917526918e-03,
        6.410256410256410e-03,
        -2.955065359477124e-02,
        1.796443723688307e-01,
        -1.39243221690590e00,
    ]
)


# --- The generator ---------------------------------------------------------------------------

#: Bit generators whose state words were found, by id (the object held, so the id stays its
#: own): each with its :func:`state_words` view, or None.
_STATE_VIEWS: dict[int, tuple[np.random.BitGenerator, np.ndarray | None]] = {}


def state_words(rng: np.random.Generator) -> np.ndarray | None:
    """The PCG64 state of ``rng`` as the ``uint64[4]`` array the compiled draws advance in place:
    a view on the bit generator's own state (low word, high word of the 128-bit LCG state,
    then of its increment), so ``rng`` continues from wherever they leave it.

    None when ``rng`` is not drawn by PCG64, or its state is not laid out that way in memory
    (numpy built without 128-bit integers): numpy then draws.
    """
    bit_generator = rng.bit_generator
    known = _STATE_VIEWS.get(id(bit_generator))
    if known is not None and known[0] is bit_generator:
        return known[1]
    view = _pcg64_state_view(bit_generator)
    if len(_STATE_VIEWS) >= 64:
        _STATE_VIEWS.clear()
    _STATE_VIEWS[id(bit_generator)] = (bit_generator, view)
    return view


def _pcg64_state_view(bit_generator: np.random.BitGenerator) -> np.ndarray | None:
    """:func:`state_words` of one bit generator, checked against its ``state`` dictionary.

    numpy's ``pcg64_state`` starts with a pointer to the LCG's ``{state, inc}``, two 128-bit
    integers, little-endian where the compiler has them (``ctypes.state_address`` is public;
    the layout is checked here, not assumed)."""
    if type(bit_generator) is not np.random.PCG64:
        return None
    lcg_address = ctypes.c_void_p.from_address(bit_generator.ctypes.state_address).value
    if not lcg_address:
        return None
    words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(lcg_address))
    if _LAYOUT_CHECKED[0]:  # every PCG64 of this numpy lays its state out alike: checked once
        return words
    lcg = bit_generator.state["state"]
    expected = [lcg["state"] & _WORD, lcg["state"] >> 64, lcg["inc"] & _WORD, lcg["inc"] >> 64]
    if [int(word) for word in words] != expected:
        return None
    _LAYOUT_CHECKED[0] = True
    return words


#: Whether a PCG64's state words were found where :func:`_pcg64_state_view` looks (once per process).
_LAYOUT_CHECKED = [False]


@intrinsic
def _multiply_high(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return signature, codegen


# The compiled draws carry the generator's state as a value, ``pcg`` = (low, high, increment
# low, increment high): a tuple of four uint64 that the compiler keeps in registers. A kernel
# loads it from the state array once (:func:`load_state`), threads it through its draws — each
# draw takes ``pcg`` and returns its number with the advanced ``pcg`` — and writes it back once
# at its end (:func:`store_state`). (Advancing the array in place on every uniform costs a
# store and a reload of the state words on the LCG's critical path: 20–30% of a Poisson draw.)


@njit(cache=True, inline="always")
def load_state(state):
    """The PCG64 state array (:func:`state_words`) as the value ``pcg`` the draws carry."""
    return (state[0], state[1], state[2], state[3])


@njit(cache=True, inline="always")
def store_state(state, pcg):
    """Write ``pcg``'s LCG state back to the state array (the increment never changes)."""
    state[0] = pcg[0]
    state[1] = pcg[1]


@njit(cache=True, inline="always")
def next_uint64(pcg):
    """numpy's ``pcg64_next64``: one LCG step (state × multiplier + increment, mod 2**128),
    then the XSL-RR output of the new state (high ^ low word, rotated right by the top 6 bits).
    Returns (the 64-bit word, the advanced ``pcg``)."""
    low, high, increment_low, increment_high = pcg
    new_low = low * _MULTIPLIER_LOW + increment_low
    carry = _U1 if new_low < increment_low else np.uint64(0)
    new_high = _multiply_high(low, _MULTIPLIER_LOW) + low * _MULTIPLIER_HIGH + high * _MULTIPLIER_LOW
    new_high = new_high + increment_high + carry
    folded = new_high ^ new_low
    rotation = new_high >> _U58
    word = (folded >> rotation) | (folded << ((_U64 - rotation) & _U63))
    return word, (new_low, new_high, increment_low, increment_high)


@njit(cache=True, inline="always")
def next_double(pcg):
    """numpy's ``pcg64_next_double``: a uniform double in [0, 1) from the top 53 bits.
    Returns (the double, the advanced ``pcg``)."""
    word, pcg = next_uint64(pcg)
    return np.float64(word >> _U11) * _DOUBLE_UNIT, pcg


@njit(cache=True, inline="always")
def next_double_in_place(state):
    """:func:`next_double` advancing the state array itself, for numba's BTPE binomial
    (:func:`binomial_btpe`), which draws through such a function."""
    u, pcg = next_double(load_state(state))
    store_state(state, pcg)
    return u


# --- Continuous distributions ----------------------------------------------------------------


@njit(cache=True, inline="always")
def standard_normal(pcg):
    """numpy's ``random_standard_normal``: the 256-layer ziggurat (numpy's tables).
    Returns (the draw, the advanced ``pcg``), as every draw below does.

    The first try, accepted inside its layer's rectangle 99% of the time, is inlined into
    the caller; the rest of the ziggurat is :func:`_standard_normal_beyond`."""
    word, pcg = next_uint64(pcg)
    idx = word & _LOW_BYTE
    r = word >> _U8
    rabs = (r >> _U1) & _MANTISSA_52
    if rabs < ki_double[idx]:
        x = np.float64(rabs) * wi_double[idx]
        return (-x if (r & _U1) != 0 else x), pcg
    return _standard_normal_beyond(pcg, word)


@njit(cache=True, nogil=True)
def _standard_normal_beyond(pcg, word):
    """:func:`standard_normal` from a first 64-bit ``word`` that fell outside its layer's
    rectangle: the wedge or tail test, then further tries."""
    r = word
    while True:
        idx = r & _LOW_BYTE
        r >>= _U8
        negative = (r & _U1) != 0
        rabs = (r >> _U1) & _MANTISSA_52
        x = np.float64(rabs) * wi_double[idx]
        if negative:
            x = -x
        if rabs < ki_double[idx]:
            return x, pcg
        if idx == 0:
            # The tail beyond the base layer, by Marsaglia's exponential rejection.
            while True:
                u, pcg = next_double(pcg)
                xx = -ziggurat_nor_inv_r * np.log1p(-u)
                u, pcg = next_double(pcg)
                yy = -np.log1p(-u)
                if yy + yy > xx * xx:
                    if ((rabs >> _U8) & _U1) != 0:
                        return -(ziggurat_nor_r + xx), pcg
                    return ziggurat_nor_r + xx, pcg
        u, pcg = next_double(pcg)
        if (fi_double[idx - 1] - fi_double[idx]) * u + fi_double[idx] < np.exp(-0.5 * x * x):
            return x, pcg
        r, pcg = next_uint64(pcg)


@njit(cache=True, inline="always")
def normal(pcg, loc, scale):
    """numpy's ``random_normal``: ``loc + scale × standard normal``."""
    z, pcg = standard_normal(pcg)
    scaled = scale * z
    return loc + scaled, pcg


@njit(cache=True, nogil=True)
def standard_exponential(pcg):
    """numpy's ``random_standard_exponential`` (the ziggurat, ``_zig`` in older numpy)."""
    while True:
        ri, pcg = next_uint64(pcg)
        ri >>= _U3
        idx = ri & _LOW_BYTE
        ri >>= _U8
        x = np.float64(ri) * we_double[idx]
        if ri < ke_double[idx]:
            return x, pcg
        u, pcg = next_double(pcg)
        if idx == 0:
            return ziggurat_exp_r - np.log1p(-u), pcg
        if (fe_double[idx - 1] - fe_double[idx]) * u + fe_double[idx] < np.exp(-x):
            return x, pcg


@njit(cache=True, nogil=True)
def standard_gamma(pcg, shape):
    """numpy's ``random_standard_gamma``: exponential at shape 1, zero at shape 0, the
    Ahrens–Dieter/Best rejection below 1 and Marsaglia–Tsang above."""
    if shape == 1.0:
        return standard_exponential(pcg)
    if shape == 0.0:
        return 0.0, pcg
    if shape < 1.0:
        while True:
            u, pcg = next_double(pcg)
            v, pcg = standard_exponential(pcg)
            if u <= 1.0 - shape:
                x = u ** (1.0 / shape)
                if x <= v:
                    return x, pcg
            else:
                y = -np.log((1 - u) / shape)
                x = (1.0 - shape + shape * y) ** (1.0 / shape)
                if x <= v + y:
                    return x, pcg
    b = shape - 1.0 / 3.0
    return marsaglia_tsang(pcg, b, 1.0 / np.sqrt(9 * b))


@njit(cache=True, inline="always")
def marsaglia_tsang(pcg, b, c):
    """The Marsaglia–Tsang branch of numpy's ``random_standard_gamma`` (shape > 1), given its
    constants b = shape − 1/3 and c = 1/√(9b) (:func:`gamma_constants`)."""
    while True:
        while True:
            x, pcg = standard_normal(pcg)
            v = 1.0 + c * x
            if v > 0.0:
                break
        v = v * v * v
        u, pcg = next_double(pcg)
        if u < 1.0 - 0.0331 * (x * x) * (x * x):
            return b * v, pcg
        if np.log(u) < 0.5 * x * x + b * (1.0 - v + np.log(v)):
            return b * v, pcg


@njit(cache=True, nogil=True)
def gamma_constants(shapes):
    """Per gamma shape (n,), the Marsaglia–Tsang constants numpy computes on every draw, (n, 2):
    b = shape − 1/3 and c = 1/√(9b) (NaN below shape 1, which uses other methods)."""
    out = np.full((shapes.shape[0], 2), np.nan)
    for i in range(shapes.shape[0]):
        shape = shapes[i]
        if shape > 1.0:
            b = shape - 1.0 / 3.0
            out[i, 0] = b
            out[i, 1] = 1.0 / np.sqrt(9 * b)
    return out


@njit(cache=True, inline="always")
def gamma_from_constants(pcg, shape, scale, constants, i):
    """numpy's ``random_gamma`` for a shape whose :func:`gamma_constants` are row ``i``."""
    if shape > 1.0:
        drawn, pcg = marsaglia_tsang(pcg, constants[i, 0], constants[i, 1])
    else:
        drawn, pcg = standard_gamma(pcg, shape)
    return scale * drawn, pcg


@njit(cache=True, nogil=True)
def gamma(pcg, shape, scale):
    """numpy's ``random_gamma``: ``scale × standard gamma(shape)``."""
    drawn, pcg = standard_gamma(pcg, shape)
    return scale * drawn, pcg


# --- Poisson ---------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def loggam(x):
    """numpy's ``random_loggam``: log Γ(x) by the SPECFUN series (x shifted up to 7)."""
    if x == 1.0 or x == 2.0:
        return 0.0
    n = 0
    if x < 7.0:
        n = np.int64(7 - x)
    x0 = x + n
    x2 = (1.0 / x0) * (1.0 / x0)
    gl0 = _LOGGAM_SERIES[9]
    for k in range(8, -1, -1):
        gl0 *= x2
        gl0 += _LOGGAM_SERIES[k]
    gl = gl0 / x0 + 0.5 * _LOG_2PI + (x0 - 0.5) * np.log(x0) - x0
    if x < 7.0:
        for _ in range(n):
            gl = gl - np.log(x0 - 1.0)
            x0 = x0 - 1.0
    return gl


#: Columns of :func:`poisson_constants`: the mean, then for the multiplication method
#: exp(−mean) or for PTRS log(mean), b, a, log(1/α) and v_r.
POISSON_CONSTANTS = 6


@njit(cache=True, nogil=True)
def poisson_constants(means):
    """Per mean (n,), the constants numpy's ``random_poisson`` computes on every draw, (n, 6)."""
    out = np.zeros((means.shape[0], POISSON_CONSTANTS))
    for i in range(means.shape[0]):
        lam = means[i]
        out[i, 0] = lam
        if lam >= 10:
            out[i, 1] = np.log(lam)
            out[i, 2], out[i, 3], out[i, 4], out[i, 5] = ptrs_constants(lam)
        else:
            out[i, 1] = np.exp(-lam)
    return out


#: Entries of :func:`log_factorials`.
LOG_FACTORIALS = 1024


@njit(cache=True, nogil=True)
def log_factorials():
    """log k! for k < :data:`LOG_FACTORIALS`: numpy's ``random_loggam(k + 1)``, the same numbers,
    looked up instead of recomputed by :func:`poisson_ptrs`."""
    table = np.empty(LOG_FACTORIALS)
    for k in range(LOG_FACTORIALS):
        table[k] = loggam(np.float64(k + 1))
    return table


@njit(cache=True, inline="always")
def poisson_multiplication(pcg, exp_neg_lam):
    """numpy's ``random_poisson_mult`` (means below 10), given exp(−mean): the number of
    uniforms whose running product stays above exp(−mean)."""
    count = 0
    product = 1.0
    while True:
        u, pcg = next_double(pcg)
        product *= u
        if product > exp_neg_lam:
            count += 1
        else:
            return count, pcg


@njit(cache=True, inline="always")
def poisson_ptrs(pcg, lam, loglam, b, a, log_invalpha, vr, log_factorial):
    """numpy's ``random_poisson_ptrs`` (means of 10 and more): Hörmann's transformed
    rejection, given its constants (:func:`poisson_constants`) and :func:`log_factorials`."""
    while True:
        u, pcg = next_double(pcg)
        u = u - 0.5
        v, pcg = next_double(pcg)
        us = 0.5 - np.fabs(u)
        k = np.int64(np.floor((2 * a / us + b) * u + lam + 0.43))
        if us >= 0.07 and v <= vr:
            return k, pcg
        if k < 0 or (us < 0.013 and v > us):
            continue
        log_k_factorial = log_factorial[k] if k < log_factorial.shape[0] else loggam(np.float64(k + 1))
        if np.log(v) + log_invalpha - np.log(a / (us * us) + b) <= -lam + k * loglam - log_k_factorial:
            return k, pcg


@njit(cache=True, inline="always")
def ptrs_constants(lam):
    """PTRS's constants of a mean of 10 and more, as numpy's ``random_poisson_ptrs`` computes
    them (after log(mean)): b, a, log(1/α) and v_r."""
    b = 0.931 + 2.53 * np.sqrt(lam)
    a = -0.059 + 0.02483 * b
    return b, a, np.log(1.1239 + 1.1328 / (b - 3.4)), 0.9277 - 3.6224 / (b - 2)


# --- Binomial --------------------------------------------------------------------------------


_binomial_btpe_r = make_binomial_btpe(next_double_in_place, _binomial_btpe_squeeze)


@intrinsic
def _stack_words(typingctx):
    """A pointer to four uint64 on the calling function's stack (allocated once, at its entry)."""
    signature = types.CPointer(types.uint64)()

    def codegen(context, builder, sig, args):
        return cgutils.alloca_once(builder, ir.IntType(64), size=4)

    return signature, codegen


@njit(cache=True, nogil=True)
def binomial_btpe(pcg, n, p):
    """numpy's ``random_binomial_btpe`` (Kachitvichyanukul–Schmeiser; numba's translation,
    which tracks numpy's version). It draws through a state array: ``pcg`` is copied to a
    ``uint64[4]`` on the stack, advanced there, and read back."""
    state = carray(_stack_words(), 4)
    state[0], state[1], state[2], state[3] = pcg
    r = min(p, 1.0 - p)
    y = _binomial_btpe_r(state, n, r)
    return (n - y if p > 0.5 else y), load_state(state)


@njit(cache=True, nogil=True)
def binomial_inversion_constants(n, p):
    """What numpy's ``random_binomial_inversion`` computes per draw: (q, qⁿ, bound)."""
    q = 1.0 - p
    qn = np.exp(n * np.log(q))
    mean = n * p
    bound = np.int64(min(np.float64(n), mean + 10.0 * np.sqrt(mean * q + 1)))
    return q, qn, bound


@njit(cache=True, nogil=True)
def binomial_inversion(pcg, n, p, q, qn, bound):
    """numpy's ``random_binomial_inversion`` given its constants (:func:`binomial_inversion_constants`):
    the successes by inverting the CDF from 0 up, restarting past ``bound``."""
    x = 0
    px = qn
    u, pcg = next_double(pcg)
    while u > px:
        x += 1
        if x > bound:
            x = 0
            px = qn
            u, pcg = next_double(pcg)
        else:
            u -= px
            px = ((n - x + 1) * p * px) / (x * q)
    return x, pcg


@njit(cache=True, nogil=True)
def binomial(pcg, n, p):
    """numpy's ``random_binomial``: none for n = 0 or p = 0; inversion while the smaller of
    p, 1 − p times n is at most 30, BTPE above (counted from the other side when p > 0.5)."""
    if n == 0 or p == 0.0:
        return 0, pcg
    if p <= 0.5:
        if p * n <= 30.0:
            q, qn, bound = binomial_inversion_constants(n, p)
            return binomial_inversion(pcg, n, p, q, qn, bound)
        return binomial_btpe(pcg, n, p)
    q = 1.0 - p
    if q * n <= 30.0:
        qq, qn, bound = binomial_inversion_constants(n, q)
        x, pcg = binomial_inversion(pcg, n, q, qq, qn, bound)
    else:
        x, pcg = binomial_btpe(pcg, n, q)
    return n - x, pcg


@njit(cache=True, nogil=True)
def binomial_fill(state, counts, probabilities, out):
    """``out[:] = Generator.binomial(counts, probabilities)`` for int64 ``counts`` (n,) and
    ``probabilities`` (n,) in [0, 1]: the draws in order, advancing the state array."""
    pcg = load_state(state)
    for i in range(counts.shape[0]):
        out[i], pcg = binomial(pcg, counts[i], probabilities[i])
    store_state(state, pcg)


#: Trials up to which :func:`binomial_inversion_table` tabulates the inversion.
INVERSION_TRIALS = 1024


@njit(cache=True, nogil=True)
def binomial_inversion_table(p, max_trials):
    """The probabilities numpy's ``random_binomial_inversion`` steps through, for one success
    probability ``p`` and every number of trials n ≤ ``max_trials`` that numpy draws by
    inversion (n·min(p, 1 − p) ≤ 30).

    Returns ``bounds`` (N,) and ``steps`` (N, W): for n trials, the walk's bound and the
    probabilities P(X = 0), P(X = 1), … , P(X = bound) it subtracts in turn, each computed
    from the one before exactly as numpy computes it during the draw.
    """
    r = p if p <= 0.5 else 1.0 - p
    q = 1.0 - r
    rows = 0
    while rows <= max_trials and r * rows <= 30.0:
        rows += 1
    bounds = np.zeros(rows, dtype=np.int64)
    for n in range(1, rows):
        bounds[n] = binomial_inversion_constants(n, r)[2]
    width = 1
    for n in range(rows):
        width = max(width, bounds[n] + 1)
    steps = np.zeros((rows, width))
    for n in range(1, rows):
        px = binomial_inversion_constants(n, r)[1]
        steps[n, 0] = px
        for x in range(1, bounds[n] + 1):
            px = ((n - x + 1) * r * px) / (x * q)
            steps[n, x] = px
    return bounds, steps


@njit(cache=True, inline="always")
def binomial_from_table(pcg, n, p, bounds, steps):
    """numpy's ``random_binomial`` for a probability ``p`` tabulated by
    :func:`binomial_inversion_table`: the inversion walks the table (no divisions); trials
    beyond it, and BTPE, are drawn by :func:`binomial`."""
    if n == 0 or p == 0.0:
        return 0, pcg
    r = p if p <= 0.5 else 1.0 - p
    if r * n > 30.0 or n >= bounds.shape[0]:
        return binomial(pcg, n, p)
    bound = bounds[n]
    x = 0
    px = steps[n, 0]
    u, pcg = next_double(pcg)
    while u > px:
        x += 1
        if x > bound:
            x = 0
            px = steps[n, 0]
            u, pcg = next_double(pcg)
        else:
            u -= px
            px = steps[n, x]
    return (x if p <= 0.5 else n - x), pcg


#: :func:`binomial_inversion_tables` made, by the probabilities' bytes.
_INVERSION_TABLES: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def binomial_inversion_tables(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`binomial_inversion_table` of each probability (L,), stacked: rows (L,) of each
    table, its bounds (L, N) and steps (L, N, W), zero-padded. Made once per set of
    probabilities (kept for later calls)."""
    key = np.ascontiguousarray(probabilities, dtype=np.float64).tobytes()
    tables = _INVERSION_TABLES.get(key)
    if tables is None:
        each = [binomial_inversion_table(float(p), INVERSION_TRIALS) for p in probabilities]
        rows = np.array([bounds.shape[0] for bounds, _ in each], dtype=np.int64)
        width = max([steps.shape[1] for _, steps in each], default=1)
        bounds = np.zeros((len(each), max(rows, default=0)), dtype=np.int64)
        steps = np.zeros((len(each), bounds.shape[1], width))
        for lane, (lane_bounds, lane_steps) in enumerate(each):
            bounds[lane, : rows[lane]] = lane_bounds
            steps[lane, : rows[lane], : lane_steps.shape[1]] = lane_steps
        if len(_INVERSION_TABLES) >= 64:
            _INVERSION_TABLES.clear()
        tables = _INVERSION_TABLES[key] = (rows, bounds, steps)
    return tables
