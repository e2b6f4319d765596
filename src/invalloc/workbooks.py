"""Excel workbooks that are the same bytes for the same content.

openpyxl stamps a workbook with the time it was saved, in its document properties and in every
zip entry, so two saves of one table differ. Reports must not: the same seed gives the same
files (``compare --executor ray`` is checked byte for byte against ``local``), and a reviewer's
workbook can be hashed. :func:`save_workbook` writes the document properties with a fixed
time and every zip entry with a fixed date, in openpyxl's own order.
"""

from __future__ import annotations

import datetime
import io
import os
import zipfile
from pathlib import Path
from typing import Any

#: The time every workbook states as created and modified (the zip format's earliest date).
FIXED_TIME = datetime.datetime(1980, 1, 1)


def save_workbook(workbook: Any, path: str | Path) -> Path:
    """Save an openpyxl ``workbook`` to ``path`` reproducibly (written beside it, then renamed)."""
    from openpyxl.writer.excel import ExcelWriter

    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME
    draft = io.BytesIO()
    with zipfile.ZipFile(draft, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).write_data()
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:  # a failed save leaves nothing half-written
        with zipfile.ZipFile(draft) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in source.infolist():
                info = zipfile.ZipInfo(entry.filename, date_time=FIXED_TIME.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                target.writestr(info, source.read(entry.filename))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


__all__ = ["FIXED_TIME", "save_workbook"]
