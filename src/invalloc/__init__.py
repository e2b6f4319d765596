"""invalloc: learn, compare and govern inventory allocation policies.

Layers, each importing only from the ones before it:
``config`` → ``sim`` → ``env`` → ``baselines``/agents → evaluation → rule export → governance.
"""

__version__ = "0.1.0"
