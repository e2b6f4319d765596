"""Read the actions CSV that ``--policy replay`` replays, refusing anything it cannot replay exactly.

The file has a ``period`` column (whole numbers from 0, each once) and one column per decision
variable (requested units: finite numbers ≥ 0). Unknown columns are refused, so that a renamed
decision is not silently replayed as zero.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from invalloc.config.schema import MAX_UNITS
from invalloc.sim.policy import PolicyError

#: Largest actions CSV read.
MAX_ACTIONS_BYTES = 100 * 1024 * 1024
#: Problems listed before the rest are counted.
_MAX_PROBLEMS = 3


def read_actions(path: str | Path, decision_names: list[str]) -> dict[int, np.ndarray]:
    """Period → requested units per decision (in ``decision_names`` order).

    :raises PolicyError: one line naming the file and the first problems (row, column, value).
    """
    path = Path(path)
    if path.is_dir():
        raise PolicyError(f"{path}: is a folder, not an actions CSV")
    if not path.is_file():
        raise PolicyError(f"{path}: actions file not found")
    if path.stat().st_size > MAX_ACTIONS_BYTES:
        raise PolicyError(f"{path}: larger than the {MAX_ACTIONS_BYTES // 2**20} MB limit for an actions CSV")
    problems: list[str] = []
    actions: dict[int, np.ndarray] = {}
    first_row: dict[int, int] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if "period" not in header:
                raise PolicyError(f"{path}: no 'period' column (expected period,{','.join(decision_names[:3])},…)")
            missing = [name for name in decision_names if name not in header]
            if missing:
                raise PolicyError(f"{path}: missing column(s) {', '.join(missing[:5])}")
            unknown = [name for name in header if name != "period" and name not in decision_names]
            if unknown:
                raise PolicyError(
                    f"{path}: unknown column(s) {', '.join(unknown[:5])} (not decisions of this scenario)"
                )
            if len(set(header)) != len(header):
                raise PolicyError(f"{path}: a column appears twice in the header")
            period_at = header.index("period")
            columns = [header.index(name) for name in decision_names]
            for row_number, row in enumerate(reader, start=1):
                if not row:
                    continue
                where = f"row {row_number} (line {reader.line_num})"
                if len(row) != len(header):
                    problems.append(f"{where}: {len(row)} fields, the header has {len(header)}")
                    continue
                period = _period(row[period_at])
                if period is None:
                    problems.append(f"{where}: period {row[period_at]!r} is not a whole number ≥ 0")
                    continue
                if period in first_row:
                    problems.append(
                        f"{where}: period {period} is also on row {first_row[period]}; give each period once"
                    )
                    continue
                first_row[period] = row_number
                values = np.empty(len(columns))
                for k, column in enumerate(columns):
                    text = row[column].strip()
                    try:
                        value = float(text)
                    except ValueError:
                        value = math.nan
                    if not (math.isfinite(value) and 0 <= value <= MAX_UNITS):
                        problems.append(
                            f"{where}: {decision_names[k]} = {text!r} is not a number of units in 0 … {MAX_UNITS:g}"
                        )
                        break
                    values[k] = value
                else:
                    actions[period] = values
    except (OSError, csv.Error) as error:
        raise PolicyError(f"{path}: not a readable CSV ({getattr(error, 'strerror', None) or error})") from None
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: not UTF-8 text ({error.reason})") from None
    if problems:
        more = f"; … and {len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
        raise PolicyError(f"{path}: " + "; ".join(problems[:_MAX_PROBLEMS]) + more)
    if not actions:
        raise PolicyError(f"{path}: no rows; give one row per period from period 0")
    gaps = sorted(set(range(max(actions) + 1)) - set(actions))
    if gaps:
        raise PolicyError(f"{path}: no row for period(s) {', '.join(map(str, gaps[:5]))} (periods are numbered from 0)")
    return actions


def _period(text: str) -> int | None:
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return None
        if not (math.isfinite(number) and number.is_integer()):
            return None
        value = int(number)
    return value if value >= 0 else None
