"""Governance of rule tables in production: monitoring commands and the challenger loop.

The top layer: it compares tables with :mod:`invalloc.evaluation` and moves registry aliases
with :mod:`invalloc.rules.registry`; nothing below imports it.
"""
