"""Audit log: one row per order, shipment, receipt, sale, payment, write-down and rule intervention.

Off by default (it costs time on the simulator's hot path); written as CSV or Parquet.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["period", "event", "source", "destination", "sku", "quantity", "amount", "detail"]


class AuditLog:
    """Rows of the audit trail; quantities in units, amounts in currency."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def movements(
        self,
        period: int,
        event: str,
        source: str,
        destination: str,
        skus: list[str],
        quantity: np.ndarray,
        amount: np.ndarray,
    ) -> None:
        """One row per SKU with a non-zero quantity."""
        for s in np.flatnonzero(quantity):
            self.rows.append((period, event, source, destination, skus[s], float(quantity[s]), float(amount[s]), ""))

    def interventions(self, period: int, decision) -> None:
        for rule, item in decision.interventions.items():
            if item.count:
                self.rows.append(
                    (
                        period,
                        "rule_intervention",
                        "",
                        "",
                        "",
                        item.volume,
                        0.0,
                        f"{rule}: {item.count} decision(s) changed",
                    )
                )

    def payment(self, period: int, paid: float, collected: float) -> None:
        if paid:
            self.rows.append((period, "supplier_payment", "company", "suppliers", "", 0.0, paid, ""))
        if collected:
            self.rows.append((period, "customer_payment", "customers", "company", "", 0.0, collected, ""))

    def close(
        self, period: int, holding: float, penalties: float, interest: float, written: float, expired_units: float
    ) -> None:
        for event, amount, quantity in (
            ("holding_cost", holding, 0.0),
            ("penalty", penalties, 0.0),
            ("interest", interest, 0.0),
            ("write_down", written, expired_units),
        ):
            if amount:
                self.rows.append((period, event, "", "", "", quantity, amount, ""))

    def frame(self, episode: int | None = None) -> pd.DataFrame:
        table = pd.DataFrame(self.rows, columns=COLUMNS)
        if episode is not None:
            table.insert(0, "episode", episode)
        return table


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as Parquet (``.parquet``) or CSV, atomically (no half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        if path.suffix == ".parquet":
            table.to_parquet(temporary, index=False)
        else:
            table.to_csv(temporary, index=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
