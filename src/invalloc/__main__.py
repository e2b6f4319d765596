"""``python -m invalloc``: the ``invalloc`` command line."""

from invalloc.cli import main

main()
