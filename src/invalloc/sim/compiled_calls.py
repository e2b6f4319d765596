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


class BoundKernel:
    """``module.name(*args)`` (``module`` a module or its ``globals()``): the first call
    through numba's dispatcher, the later ones straight at the compiled entry point of the
    signature the first call resolved to.

    The arguments of every later call must have the first call's numba types (see the module
    docstring); :meth:`unbind` makes the next call go through the dispatcher again. The
    function is looked up in ``module`` on every call, so a replaced one (a profiler's or a
    test's wrapper) is called from the next call on, through its own ``__call__``.
    """

    __slots__ = ("_namespace", "_name", "_function", "_entry")

    def __init__(self, module: ModuleType | dict[str, Any], name: str) -> None:
        self._namespace = module if isinstance(module, dict) else vars(module)
        self._name = name
        self._function: Any = None
        self._entry: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        function = self._namespace[self._name]
        if function is self._function:
            return self._entry(*args)  # type: ignore[misc]
        result = function(*args)
        self._function, self._entry = function, _entry_point(function, args)
        return result

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy (deep or pickled) is unbound and looks the function up in the same module.
        return _unbound, (self._namespace["__name__"], self._name)

    def unbind(self) -> None:
        """Make the next call go through the dispatcher (and bind to its signature)."""
        self._function = self._entry = None

    @property
    def bound(self) -> bool:
        """Whether calls go straight to a compiled entry point."""
        return self._entry is not None and self._entry is not self._function


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
