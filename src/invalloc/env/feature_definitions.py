"""The rule table's inputs: what each feature is (names, units, versions), without computing them.

This module imports the standard library only, so a rule consumer that loads and evaluates a
table (:mod:`invalloc.rules`) never loads the simulator; the values are computed from a
simulator by :class:`invalloc.env.features.FeatureSet`.

Feature set version :data:`FEATURE_SET_VERSION` (tables of the versions in
:data:`FEATURE_SET_VERSIONS` still load and decide). Every feature is computed from the state at
the decision point alone (no history), in business units, so a reviewer can read a
condition such as ``days_of_cover_dc_north_regular < 12`` without knowing the simulator:

========================================  ========  =================================================
name                                      unit      meaning
========================================  ========  =================================================
``days_of_cover_<dc>_<group>``            days      inventory position (on hand + inbound − owed
                                                    backorders) of the DC's SKUs in the group, over
                                                    their expected demand through the DC per day
``cash_headroom_over_buffer``             currency  money a purchase may commit now under the cash
                                                    rule (cash + unused credit − bills due − orders
                                                    awaiting approval − treasury buffer)
``backlog_days_<channel>_<tier>``         days      units the tier is owed (backorders) or was
                                                    refused last period (lost sales), over its
                                                    expected demand per day
``season_demand_index``                   ratio     this period's expected demand over the
                                                    episode's average (1 = an average period)
``days_remaining``                        days      days left in the episode
``inbound_days_<dc>_arriving_in_<k>``     days      (version 2) units in transit to the DC that
                                                    arrive k periods from now (0 = this period), over
                                                    the DC's expected demand per day, all SKUs; k runs
                                                    over the longest lead time
========================================  ========  =================================================

Version 2 adds the inbound pipeline by arrival period. Version 1's cover counts on-hand and
inbound stock alike; a trained policy also reacts to *when* the inbound stock arrives (what
it ordered one and two periods ago), and on `retail` these nine features raise the table's
agreement with the teacher by about 1.5 points.

SKU groups (empty ones are left out): ``perishable`` (a shelf life), ``clearance`` (net
realisable value below standard cost: marked down) and ``regular`` (all others).

Names are FEEL and Python identifiers (lower case, digits, ``_``), so the same names work
as CSV headers, JSON keys and DMN input expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Version of the feature definitions extracted tables use; a table records its version.
FEATURE_SET_VERSION = "2"
#: Versions this evaluator computes (a table of any other version is refused).
FEATURE_SET_VERSIONS = ("1", "2")
#: Days of cover reported where a group has no expected demand through a DC (days).
NO_DEMAND_COVER_DAYS = 999.0


def identifier(text: str) -> str:
    """``text`` as a FEEL/Python identifier: lower case, runs of other characters become ``_``."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return name if name and not name[0].isdigit() else f"x_{name}"


@dataclass(frozen=True)
class Feature:
    """One input of a rule table: a name, its unit and what it measures."""

    name: str
    unit: str
    description: str
