"""`rules diff` across scenarios: refused by default (the corpus checks the error), listed on request."""

from __future__ import annotations

import json

from corpus import _edit_manifest, rule_dir  # noqa: I001 - the corpus module beside this file
from typer.testing import CliRunner

from invalloc.cli import app


def test_diff_across_scenarios_lists_with_a_note(tmp_path):
    rule_dir()(tmp_path / "a")
    rule_dir(_edit_manifest(**{"scenario|name": "retail"}))(tmp_path / "b")
    runner = CliRunner()
    refused = runner.invoke(app, ["rules", "diff", str(tmp_path / "a"), str(tmp_path / "b")])
    assert refused.exit_code == 2
    listed = runner.invoke(app, ["rules", "diff", str(tmp_path / "a"), str(tmp_path / "b"), "--across-scenarios"])
    assert listed.exit_code == 0, listed.output
    assert "scenarios differ (tiny → retail)" in " ".join(listed.stdout.split())
    as_json = runner.invoke(
        app, ["rules", "diff", str(tmp_path / "a"), str(tmp_path / "b"), "--across-scenarios", "--json"]
    )
    assert json.loads(as_json.stdout)["same_scenario"] is False
    same = runner.invoke(app, ["rules", "diff", str(tmp_path / "a"), str(tmp_path / "a"), "--json"])
    assert same.exit_code == 0 and json.loads(same.stdout)["same_scenario"] is True
