"""Rule-based baseline policies, built by name from ``--param KEY=VALUE`` strings."""

from __future__ import annotations

import math
from collections.abc import Mapping

from invalloc.baselines.rules import FixedPolicy, ReplayPolicy, RuleBasedPolicy
from invalloc.config.schema import MAX_PERIODS, MAX_UNITS
from invalloc.sim.policy import Policy, PolicyError

POLICY_NAMES = ("fixed", "base_stock", "s_S", "proportional", "priority", "fixed_split", "replay", "oracle")

#: Largest ``cover`` / ``s_cover`` / ``S_cover``, in periods of demand.
MAX_COVER = 1_000.0
#: What each numeric parameter may hold: (lowest, highest, whole numbers only, unit).
_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "level": (0.0, MAX_UNITS, False, "units"),
    "levels": (0.0, MAX_UNITS, False, "units"),
    "s": (0.0, MAX_UNITS, False, "units"),
    "S": (0.0, MAX_UNITS, False, "units"),
    "quantities": (0.0, MAX_UNITS, False, "units"),
    "quantity": (0.0, MAX_UNITS, False, "units"),
    "cover": (0.0, MAX_COVER, False, "periods"),
    "s_cover": (0.0, MAX_COVER, False, "periods"),
    "S_cover": (0.0, MAX_COVER, False, "periods"),
    "stop": (0.0, float(MAX_PERIODS), True, "periods"),
    "split": (0.0, 1e9, False, "shares"),
}


def _numbers(key: str, text: str) -> list[float]:
    """The comma-separated numbers of ``--param key=text``, each finite and in the key's range."""
    try:
        values = [float(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise PolicyError(f"--param {key}={text}: expected a number or comma-separated numbers") from None
    if not values:
        raise PolicyError(f"--param {key}: no value given")
    low, high, whole, unit = _RANGES.get(key, (-math.inf, math.inf, False, ""))
    for value in values:
        if not math.isfinite(value):
            raise PolicyError(f"--param {key}={text}: {value} is not a finite number")
        if not low <= value <= high:
            raise PolicyError(f"--param {key}={text}: {value:g} is outside {low:g} … {high:g} {unit}".rstrip())
        if whole and not value.is_integer():
            raise PolicyError(f"--param {key}={text}: {value:g} is not a whole number of {unit}")
    return values


def _number(key: str, text: str) -> float:
    values = _numbers(key, text)
    if len(values) != 1:
        raise PolicyError(f"--param {key}={text}: expected one number")
    return values[0]


def make_policy(name: str, params: Mapping[str, str] | None = None, actions: str | None = None) -> Policy:
    """Build a baseline policy by name.

    >>> make_policy("base_stock", {"levels": "60,120,200"}).name
    'base_stock'
    """
    params = dict(params or {})
    allowed = {
        "fixed": {"quantities", "quantity"},
        "base_stock": {"level", "levels", "cover", "allocation", "stop"},
        "s_S": {"s", "S", "s_cover", "S_cover", "allocation", "stop"},
        "proportional": {"level", "levels", "cover", "stop"},
        "priority": {"level", "levels", "cover", "stop"},
        "fixed_split": {"split", "level", "levels", "cover", "stop"},  # split default: equal shares
        "replay": set(),
        "oracle": set(),
    }
    if name not in allowed:
        raise PolicyError(f"--policy {name}: unknown policy (choose from {', '.join(POLICY_NAMES)})")
    unknown = sorted(set(params) - allowed[name])
    if unknown:
        raise PolicyError(
            f"--param {unknown[0]}: not a parameter of '{name}' (accepts {', '.join(sorted(allowed[name])) or 'none'})"
        )
    if name == "fixed":
        text = params.get("quantities", params.get("quantity"))
        if text is None:
            raise PolicyError("--policy fixed needs --param quantities=a,b,c (one per decision) or quantity=x")
        return FixedPolicy(_numbers("quantities" if "quantities" in params else "quantity", text))
    if name == "oracle":
        from invalloc.baselines.oracle import OraclePolicy

        return OraclePolicy()
    if name == "replay":
        if actions is None:
            raise PolicyError("--policy replay needs --actions CSV")
        return ReplayPolicy(actions)
    common = {
        "level": _number("level", params["level"]) if "level" in params else None,
        "levels": _numbers("levels", params["levels"]) if "levels" in params else None,
    }
    if "cover" in params:
        common["cover"] = _number("cover", params["cover"])
    if "stop" in params:
        common["stop"] = "auto" if params["stop"] == "auto" else _numbers("stop", params["stop"])
    allocation = params.get("allocation", "proportional")
    if allocation not in ("proportional", "priority"):
        raise PolicyError(f"--param allocation={allocation}: choose proportional or priority")
    if name == "base_stock":
        return RuleBasedPolicy("base_stock", "base_stock", allocation, **common)
    if name == "s_S":
        if ("s" in params) != ("S" in params):
            raise PolicyError("--policy s_S takes both --param s=… and --param S=… (units), or neither")
        if "s" in params:
            s, big_s = _number("s", params["s"]), _number("S", params["S"])
            if big_s < s:
                raise PolicyError(f"--param S={big_s:g} is below s={s:g}")
            return RuleBasedPolicy(
                "s_S", "s_S", allocation, reorder_point=s, order_up_to=big_s, stop=common.get("stop")
            )
        # Levels in periods of demand beyond each DC's lead time, so one pair suits every SKU.
        s_cover = _number("s_cover", params.get("s_cover", "0.5"))
        big_s_cover = _number("S_cover", params.get("S_cover", "2.5"))
        if big_s_cover < s_cover:
            raise PolicyError(f"--param S_cover={big_s_cover:g} is below s_cover={s_cover:g}")
        return RuleBasedPolicy(
            "s_S", "s_S", allocation, cover=big_s_cover, reorder_cover=s_cover, stop=common.get("stop")
        )
    if name == "fixed_split":
        # Without shares: split evenly over the channels a DC serves (a common naive rule).
        split = _numbers("split", params["split"]) if "split" in params else None
        if split is not None and not sum(split) > 0:
            raise PolicyError(
                f"--param split={params['split']}: the shares add up to 0; give at least one positive share"
            )
        return RuleBasedPolicy("fixed_split", "base_stock", "fixed_split", split=split, **common)
    return RuleBasedPolicy(name, "base_stock", name, **common)


__all__ = ["POLICY_NAMES", "make_policy", "Policy", "PolicyError"]
