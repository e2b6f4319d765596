"""invalloc: learn, compare and govern inventory allocation policies.

Layers, each importing only from the ones before it:
``config`` → ``sim`` → ``env`` → ``baselines``/agents → evaluation → rule export → governance.
"""

__version__ = "0.1.0"


def _register_environments() -> None:
    """Make ``gymnasium.make("invalloc/Allocation-v0", scenario=...)`` work after ``import invalloc``.

    The entry point is a string, so the environment module (and the simulator) load only
    when an environment is made.
    """
    import gymnasium

    if "invalloc/Allocation-v0" not in gymnasium.registry:
        gymnasium.register(id="invalloc/Allocation-v0", entry_point="invalloc.env.allocation_env:AllocationEnv")


_register_environments()
