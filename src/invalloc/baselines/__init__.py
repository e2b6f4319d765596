"""Rule-based baseline policies, built by name from ``--param KEY=VALUE`` strings."""

from __future__ import annotations

from collections.abc import Mapping

from invalloc.baselines.rules import FixedPolicy, ReplayPolicy, RuleBasedPolicy
from invalloc.sim.policy import Policy, PolicyError

POLICY_NAMES = ("fixed", "base_stock", "s_S", "proportional", "priority", "fixed_split", "replay", "oracle")


def _numbers(key: str, text: str) -> list[float]:
    try:
        values = [float(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise PolicyError(f"--param {key}={text}: expected a number or comma-separated numbers") from None
    if not values:
        raise PolicyError(f"--param {key}: no value given")
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
        return FixedPolicy(_numbers("quantities", text))
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
        return RuleBasedPolicy("fixed_split", "base_stock", "fixed_split", split=split, **common)
    return RuleBasedPolicy(name, "base_stock", name, **common)


__all__ = ["POLICY_NAMES", "make_policy", "Policy", "PolicyError"]
