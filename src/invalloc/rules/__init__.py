"""Rule tables: a learned policy as reviewable, deterministic rules (torch-free evaluator).

Load and decide with plain Python + numpy — no torch, no SB3, no pickle, nothing that
executes code from a file::

    from invalloc.rules import load_rule_policy
    policy = load_rule_policy("rules/retail")        # verifies files, manifest and audit log first
    # a Policy: invalloc simulate --policy rules:rules/retail

Extraction (imitation of a trained agent) lives in :mod:`invalloc.export`.
"""

from invalloc.env.features import FEATURE_SET_VERSION, Feature, FeatureSet
from invalloc.rules.formats import read_csv, read_dmn, read_json, write_csv, write_dmn, write_json
from invalloc.rules.manifest import load_rule_table, verify_directory, verify_rule_table
from invalloc.rules.policy import RuleTablePolicy, load_rule_policy
from invalloc.rules.table import DEFAULT_MAX_RULES, Output, RuleTable, RuleTableError

__all__ = [
    "DEFAULT_MAX_RULES",
    "FEATURE_SET_VERSION",
    "Feature",
    "FeatureSet",
    "Output",
    "RuleTable",
    "RuleTableError",
    "RuleTablePolicy",
    "load_rule_policy",
    "load_rule_table",
    "read_csv",
    "read_dmn",
    "read_json",
    "verify_directory",
    "verify_rule_table",
    "write_csv",
    "write_dmn",
    "write_json",
]
