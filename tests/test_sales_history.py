"""The sales-history reader: a good file becomes arrays, every bad row is named by file:row:column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invalloc.history.sales import read_sales

CHANNELS = ["stores", "online"]
SKUS = ["A", "B", "C"]


def _write(tmp_path: Path, text: str, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_weekly_history_reads_into_arrays(tmp_path):
    path = _write(
        tmp_path,
        "date,channel,sku,quantity,stockout\n"
        "2024-01-01,stores,A,5,0\n"
        "2024-01-01,online,B,2.5,\n"
        "2024-01-08,stores,A,0,1\n"
        "2024-01-15,online,C,7,yes\n",
    )
    history, problems = read_sales(path, CHANNELS, SKUS)
    assert problems == []
    assert history.labels == ("2024-01-01", "2024-01-08", "2024-01-15")
    assert history.period_days == 7
    assert history.quantity.shape == (3, 2, 3)
    assert history.quantity[0, 0, 0] == 5 and history.quantity[0, 1, 1] == 2.5 and history.quantity[2, 1, 2] == 7
    assert history.quantity.sum() == 14.5  # missing rows are zero sales
    assert history.stockout[1, 0, 0] and history.stockout[2, 1, 2] and history.stockout.sum() == 2
    tail = history.window(1, 3)
    assert tail.labels == ("2024-01-08", "2024-01-15")
    np.testing.assert_array_equal(tail.quantity, history.quantity[1:3])
    assert history.window(0, -1).periods == 2


def test_daily_and_period_numbered_histories(tmp_path):
    daily = _write(tmp_path, "date,channel,sku,quantity\n2024-03-01,stores,A,1\n2024-03-02,stores,A,2\n", "d.csv")
    history, problems = read_sales(daily, CHANNELS, SKUS)
    assert problems == [] and history.period_days == 1 and history.labels == ("2024-03-01", "2024-03-02")
    numbered = _write(tmp_path, "period,channel,sku,quantity\n0,stores,A,1\n1,online,C,2\n2,stores,B,3\n", "p.csv")
    history, problems = read_sales(numbered, CHANNELS, SKUS)
    assert problems == [] and history.labels == ("0", "1", "2") and history.period_days == 7
    assert history.quantity[2, 0, 1] == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,channel,sku,quantity\n2024-01-01,shop,A,1\n", ["sales.csv:2:channel: unknown channel 'shop'"]),
        ("date,channel,sku,quantity\n2024-01-01,stores,Z,1\n", ["sales.csv:2:sku: unknown SKU 'Z'"]),
        ("date,channel,sku,quantity\n2024-01-01,stores,A,-3\n", ["sales.csv:2:quantity: '-3' is negative"]),
        ("date,channel,sku,quantity\n2024-01-01,stores,A,lots\n", ["sales.csv:2:quantity: 'lots' is not a number"]),
        (
            "date,channel,sku,quantity\n2024-01-01,stores,A,1\n2024-01-01,stores,A,2\n",
            ["sales.csv:3:date: duplicate of row 2"],
        ),
        (
            "date,channel,sku,quantity\n2024-01-01,stores,A,1\n2024-01-08,stores,A,1\n2024-01-29,stores,A,1\n",
            ["sales.csv:date: gap in the calendar: no rows for 2 week(s)", "2024-01-15, 2024-01-22"],
        ),
        (
            "date,channel,sku,quantity\n2024-01-01,stores,A,1\n3,stores,A,1\n",
            ["sales.csv:3:date: '3' is not an ISO date"],
        ),
        ("date,period,channel,sku,quantity\n", ["sales.csv:1:period: has both a date and a period column"]),
        (
            "date,channel,sku,qty\n",
            ["sales.csv:1:qty: unknown column", "sales.csv:1: missing required column quantity"],
        ),
        ("date,channel,sku,quantity,stockout\n2024-01-01,stores,A,1,maybe\n", ["sales.csv:2:stockout: 'maybe'"]),
        (
            "period,channel,sku,quantity\n0,stores,A,1\n2,stores,A,1\n",
            ["sales.csv:period: gap in the calendar", ": 1;"],
        ),
    ],
)
def test_bad_history_names_file_row_and_column(tmp_path, text, expected):
    history, problems = read_sales(_write(tmp_path, text), CHANNELS, SKUS)
    assert history is None
    joined = "\n".join(problems)
    for fragment in expected:
        assert fragment in joined


def test_every_bad_row_is_reported_at_once(tmp_path):
    path = _write(
        tmp_path,
        "date,channel,sku,quantity\n2024-01-01,shop,A,1\n2024-01-01,stores,Z,1\n2024-01-08,stores,A,-1\n",
    )
    _, problems = read_sales(path, CHANNELS, SKUS)
    assert [p.split(": ")[0].rsplit("/", 1)[-1] for p in problems] == [
        "sales.csv:2:channel",
        "sales.csv:3:sku",
        "sales.csv:4:quantity",
    ]
