"""Export a trained policy as a rule table: extraction, fidelity, KPI retention, manifest, registry.

Depends on scikit-learn and, for the teacher and the registry, on SB3/torch and MLflow; the
tables it writes are read by the torch-free :mod:`invalloc.rules`.
"""
