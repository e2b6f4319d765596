"""Hot kernel calls made straight at the compiled code, without numba's dispatch on every call.

Calling a compiled function through its dispatcher types every argument first. For arrays
that is a lookup in C, but a structref (:mod:`invalloc.sim.kernels.packing`) goes back into
Python each time: about a microsecond an argument, several times a period, and more once a
training loop's PyTorch code has filled the CPU caches in between (``scripts/bench_env.py``).

A :class:`BoundKernel` goes through the dispatcher once, which compiles (or loads) and checks
the call, then keeps the compiled entry point of the signature that call resolved to and calls
it directly. That entry point unboxes its arguments as the signature says without checking
them again, so a bound kernel is only for calls whose argument types cannot change between
calls: the same structrefs, and arrays made by the caller with fixed dtypes, dimensions and
layout. Its owner unbinds it (:meth:`BoundKernel.unbind`) whenever those may change, e.g. at
an episode's reset, and makes anything from outside (a policy's requests) one fixed type first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from numba._dispatcher import compute_fingerprint


class BoundKernel:
    """``module.name(*args)`` (``module`` a module or its ``globals()``): the first call
    through numba's dispatcher, the later ones straight at the compiled entry point of the
    signature the first call resolved to.

    The arguments of every later call must have the first call's numba types (see the module
    docstring); :meth:`unbind` makes the next call look at its arguments' types again, and
    bind to the entry point kept for them (or go through the dispatcher for types not seen
    yet). The function is looked up in ``module`` on every call, so a replaced one (a
    profiler's or a test's wrapper) is called from the next call on, through its own
    ``__call__``.
    """

    __slots__ = ("_namespace", "_name", "_function", "_entry", "_entries")

    def __init__(self, module: ModuleType | dict[str, Any], name: str) -> None:
        self._namespace = module if isinstance(module, dict) else vars(module)
        self._name = name
        self._function: Any = None
        self._entry: Callable[..., Any] | None = None
        #: Entry points by (function, the arguments' type key): a binding after :meth:`unbind`
        #: looks its arguments' types up here rather than typing them in Python again.
        self._entries: dict[tuple[Any, tuple[Any, ...]], Callable[..., Any]] = {}

    def __call__(self, *args: Any) -> Any:
        function = self._namespace[self._name]
        if function is self._function:
            return self._entry(*args)  # type: ignore[misc]
        return self._bind(function, args)

    def _bind(self, function: Any, args: tuple[Any, ...]) -> Any:
        key = (function, _type_key(function, args))
        entry = self._entries.get(key)
        if entry is None:
            result = function(*args)  # through the dispatcher: compiled or loaded, and checked
            entry = self._entries[key] = _entry_point(function, args)
        else:
            result = entry(*args)
        self._function, self._entry = function, entry
        return result

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy (deep or pickled) is unbound and looks the function up in the same module.
        return _unbound, (self._namespace["__name__"], self._name)

    def unbind(self) -> None:
        """Make the next call bind afresh, to its own arguments' types."""
        self._function = self._entry = None

    @property
    def bound(self) -> bool:
        """Whether calls go straight to a compiled entry point."""
        return self._entry is not None and self._entry is not self._function


def _type_key(function: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What decides the numba types of ``args``: numba's own fingerprint of each (computed in
    C: dtype, dimensions, layout, writability; a tuple's members), a structref's numba type,
    else (anything else, rare) the type numba infers for it."""
    key = []
    for arg in args:
        try:
            key.append(compute_fingerprint(arg))
        except NotImplementedError:
            numba_type = getattr(arg, "_numba_type_", None)
            key.append(numba_type if numba_type is not None else _typeof(function, arg))
    return tuple(key)


def _typeof(function: Any, arg: Any) -> Any:
    try:
        return function.typeof_pyval(arg)
    except AttributeError:  # not a dispatcher: the Python type is all there is
        return type(arg)


def _entry_point(function: Any, args: tuple[Any, ...]) -> Callable[..., Any]:
    """The compiled entry point of numba dispatcher ``function`` for ``args``' types, or
    ``function`` itself if it is not a dispatcher or numba keeps no entry point for them."""
    try:
        signature = tuple(function.typeof_pyval(arg) for arg in args)
        return function.overloads[signature].entry_point
    except (AttributeError, KeyError, TypeError):
        return function


def _unbound(module: str, name: str) -> BoundKernel:
    """A :class:`BoundKernel` of ``module.name``, unbound (what a copy of one is)."""
    return BoundKernel(importlib.import_module(module), name)
