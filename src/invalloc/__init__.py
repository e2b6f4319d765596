"""invalloc: learn, compare and govern inventory allocation policies.

Layers, each importing only from the ones before it:
``config`` → ``sim`` → ``env`` → ``baselines``/agents → evaluation → rule export → governance.

Importing the package imports nothing but the standard library: a rule consumer
(``import invalloc.rules``) pays for numpy alone. The Python API — ``invalloc.build_scenario``,
``load_scenario``, ``make_env``, ``simulate``, ``tune``, ``compare``, ``train``, ``export_rules``
(:mod:`invalloc.api`) — loads on first use of one of its names. The Gymnasium environment
``invalloc/Allocation-v0`` is registered as soon as both ``invalloc`` and ``gymnasium`` are
imported, in either order; ``gymnasium.make("invalloc:invalloc/Allocation-v0", ...)`` imports
invalloc itself. (Gymnasium 1.x loads no plugin entry points, so importing ``gymnasium`` alone
cannot know about invalloc.)
"""

import sys

__version__ = "0.1.0"

#: The environment's id for ``gymnasium.make``.
ENV_ID = "invalloc/Allocation-v0"

#: The Python API (:mod:`invalloc.api`): what the commands do, as functions returning Python
#: objects. Each name loads ``invalloc.api`` on first use (below), so importing the package stays
#: light; the package only names them — the functions live in the top layer, beside the CLI.
API = ("build_scenario", "load_scenario", "make_env", "simulate", "tune", "compare", "train", "export_rules")

__all__ = ["ENV_ID", "__version__", *API]


def __getattr__(name: str):
    """``invalloc.simulate`` and the rest of :data:`API`, from :mod:`invalloc.api` on first use."""
    if name in API:
        from invalloc import api  # the one upward import, on first use only (tests/test_layers.py)

        value = getattr(api, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})


def _drop_shadowing_copies() -> None:
    """Take other copies of invalloc off ``sys.path``, keeping the one this process imported.

    MLflow puts a model's code folder (the logged models carry their own copy of the invalloc
    modules they need) first on ``sys.path`` when the model loads, and leaves it there. In a
    process that had already imported invalloc, that copy is never used, but every process it
    spawns (``compare``'s and ``tune``'s workers) would import it first and miss the rest of the
    package. The models' entry files call this once loaded; in a fresh serving process the copy
    *is* the imported package and stays.
    """
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent
    sys.path[:] = [
        entry
        for entry in sys.path
        if not (Path(entry or ".") / "invalloc" / "__init__.py").is_file() or Path(entry or ".").resolve() == here
    ]


def _register_environments(gymnasium) -> None:
    """Register :data:`ENV_ID` in ``gymnasium``'s registry (once).

    The entry point is a string, so the environment module (and the simulator) load only
    when an environment is made.
    """
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="invalloc.env.allocation_env:AllocationEnv")


class _RegisterWhenGymnasiumLoads:
    """Import hook: once ``gymnasium`` has finished loading, register :data:`ENV_ID` in it.

    It only wraps the loader Python finds for ``gymnasium`` (nothing else is touched) and
    removes itself at the first look-up.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "gymnasium":
            return None
        import importlib.util

        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot; also keeps find_spec below from finding us again
        spec = importlib.util.find_spec("gymnasium")
        loader = getattr(spec, "loader", None)
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_register(module):
            exec_module(module)
            _register_environments(module)

        try:
            loader.exec_module = exec_then_register
        except AttributeError:  # a loader that cannot be wrapped: leave gymnasium as it is
            pass
        return spec


def _arrange_registration() -> None:
    gymnasium = sys.modules.get("gymnasium")
    if gymnasium is not None and hasattr(gymnasium, "registry"):
        _register_environments(gymnasium)
    elif gymnasium is None and not any(isinstance(f, _RegisterWhenGymnasiumLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenGymnasiumLoads())


_arrange_registration()
