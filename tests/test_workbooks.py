"""Workbooks are the same bytes for the same content, and still open with openpyxl."""

from __future__ import annotations

import time

from openpyxl import Workbook, load_workbook

from invalloc.workbooks import FIXED_TIME, save_workbook


def _book(value: float) -> Workbook:
    book = Workbook()
    book.active["A1"] = value
    book.create_sheet("second")["B2"] = "text"
    return book


def test_two_saves_of_one_content_are_the_same_bytes_and_another_content_differs(tmp_path):
    save_workbook(_book(1.5), tmp_path / "a.xlsx")
    time.sleep(1.1)  # openpyxl's own save would stamp a later second here
    save_workbook(_book(1.5), tmp_path / "b.xlsx")
    save_workbook(_book(2.5), tmp_path / "c.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    assert (tmp_path / "a.xlsx").read_bytes() != (tmp_path / "c.xlsx").read_bytes()
    opened = load_workbook(tmp_path / "a.xlsx")
    assert opened.active["A1"].value == 1.5 and opened["second"]["B2"].value == "text"
    assert opened.properties.modified == FIXED_TIME
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xlsx", "b.xlsx", "c.xlsx"]  # no partial left
