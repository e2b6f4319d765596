"""A planner's own data: master-data tables and sales history turned into a scenario.

Reads the company's exported tables (products, locations, lanes, channels, suppliers) and a
long-format sales history, fits the demand models per channel × SKU (or block-resamples the
history), and writes a validated scenario YAML plus a hold-out trace for backtests. This layer
sits on ``config`` only: it produces configuration, it never simulates.
"""
