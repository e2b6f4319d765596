"""Build a scenario YAML from master-data tables, a rules file and a sales history.

:func:`build_scenario` is what ``invalloc scenario build`` runs:

1. read the master-data tables (:mod:`invalloc.history.tables`), the optional rules file
   (:func:`read_rules`) and the sales history (:mod:`invalloc.history.sales`), collecting every
   problem of every file (``file:row:column: message``);
2. hold out the last ``holdout_periods`` periods of the history and fit the demand on the rest
   (:func:`invalloc.history.fit.fit_demand`; its period 0 is the first held-out period);
3. assemble the scenario, validate it exactly as ``invalloc scenario validate`` does, mapping a
   problem found there back to the table row or rules-file field it came from;
4. write the YAML, the hold-out trace (``holdout.csv``), the bootstrap history (``--method
   bootstrap``) and the fit report, each atomically, only when everything passed.

The rules file (``--rules rules.yaml``) holds what tables do not: a mapping with any of

- ``rules:`` — the scenario's governance rules (:class:`invalloc.config.schema.Rules`);
- ``finance:`` — cash, credit, treasury buffer, payment terms, cost method
  (:class:`invalloc.config.schema.Finance`);
- ``episode:`` — :class:`invalloc.config.schema.Episode` settings; ``horizon`` may be left out
  (``--horizon``, the hold-out length, or :data:`DEFAULT_HORIZON_DAYS` of periods decide it)
  and ``period_days`` comes from the history (a different value is an error);
- ``currency:``, ``description:``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from invalloc.config.loader import (
    ConfigFileError,
    ScenarioError,
    load_scenario,
    read_config_text,
    read_yaml,
    validation_problems,
)
from invalloc.config.schema import MAX_PERIODS, Episode, Finance, Rules
from invalloc.history.sales import DEFAULT_PERIOD_DAYS, SalesHistory, read_sales
from invalloc.history.tables import MasterData, TablePaths, read_tables

#: Episode length without ``--horizon`` or a hold-out: half a year of periods.
DEFAULT_HORIZON_DAYS = 182
#: Fewest periods the demand is fitted on after the hold-out is taken away.
MIN_FIT_PERIODS = 8
#: File name of the hold-out trace written next to the scenario.
HOLDOUT_FILE = "holdout.csv"


class _EpisodeSettings(Episode):
    horizon: int | None = Field(None, ge=1, le=MAX_PERIODS, description="Periods per episode.")  # type: ignore[assignment]


class RulesFile(BaseModel):
    """The ``--rules`` file: the scenario sections that are not tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    currency: str = "USD"
    finance: Finance = Field(default_factory=Finance)
    rules: Rules = Field(default_factory=Rules)
    episode: _EpisodeSettings = Field(default_factory=_EpisodeSettings)


class BuildError(ValueError):
    """Inputs that cannot be built into a scenario; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_scenario` wrote and a summary of it."""

    scenario: Path
    files: list[Path]
    skus: int
    channels: int
    streams_by_model: dict[str, int]
    fitted_periods: tuple[str, str]
    holdout_periods: int
    horizon: int
    censored_in_holdout: int = 0
    notes: list[str] = field(default_factory=list)


def read_rules(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The rules file as plain scenario sections, or None and its problems (``file: path: message``)."""
    source = str(path)
    try:
        text = read_config_text(Path(path))
    except ConfigFileError as error:
        return None, error.lines()
    try:
        data, duplicates = read_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return None, [f"{source}: {where}: not valid YAML ({problem})"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [f"{source}: (top level): expected a mapping with rules:, finance:, episode: sections"]
    try:
        RulesFile.model_validate(data)
    except ValidationError as error:
        return None, [f"{source}: {line}" for line in duplicates + validation_problems(error, data, RulesFile)]
    if duplicates:
        return None, [f"{source}: {line}" for line in duplicates]
    return data, []


_SECTION_PATH = re.compile(r"^(products|suppliers|locations|channels|lanes)\[(\d+)\](?:\.([A-Za-z_]+))?[^:]*: (.*)$")


def _map_problem(problem: str, origins: dict[str, str], rules_source: str | None, out: str) -> str:
    """A problem of the assembled scenario, named by the file it came from where that is known."""
    match = _SECTION_PATH.match(problem)
    if match and f"{match[1]}[{match[2]}]" in origins:
        column = f":{match[3]}" if match[3] else ""
        return f"{origins[f'{match[1]}[{match[2]}]']}{column}: {match[4]}"
    if rules_source and problem.startswith(("rules.", "finance.", "episode.")):
        return f"{rules_source}: {problem}"
    return f"{out} (as built): {problem}"


def _holdout_csv(history: SalesHistory) -> str:
    lines = ["period,channel,sku,quantity"]
    for p in range(history.periods):
        for c, channel in enumerate(history.channels):
            for s, sku in enumerate(history.skus):
                lines.append(f"{p},{channel},{sku},{history.quantity[p, c, s]:.10g}")
    return "\n".join(lines) + "\n"


def _scenario_name(name: str | None, out: Path) -> tuple[str, list[str]]:
    if name is not None:
        if re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            return name, []
        return name, [f"--name {name!r}: letters, digits and _ . - only"]
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", out.stem) or "scenario", []


def build_scenario(
    paths: TablePaths,
    history_path: Path,
    out: Path,
    *,
    rules_path: Path | None = None,
    name: str | None = None,
    holdout_periods: int = 0,
    horizon: int | None = None,
    method: str = "model",
    fit_report: Path | None = None,
    period_days: int | None = None,
) -> BuildResult:
    """Read the tables and history, fit the demand and write a validated scenario.

    Args:
        paths: the master-data tables.
        history_path: the sales history CSV.
        out: the scenario YAML to write; the hold-out trace and bootstrap history go next to it.
        rules_path: the optional rules file (see the module docstring).
        name: the scenario's name; default the stem of ``out``.
        holdout_periods: the last periods of the history kept out of the fit and written as
            ``holdout.csv`` (periods 0 … N−1) for a backtest; 0 fits the whole history.
        horizon: episode length; default the hold-out length, else the rules file's, else half a
            year of periods.
        method: ``model`` (fit the demand models) or ``bootstrap`` (resample the history).
        fit_report: folder for the fit report (HTML + JSON); None writes none.
        period_days: days per period of a history numbered by ``period`` (default 7); a dated
            history's buckets are read from its dates, and a different value is an error.

    Returns:
        a :class:`BuildResult`.

    Raises:
        BuildError: every problem found, one line each; nothing has been written.
    """
    out = Path(out)
    problems: list[str] = []
    scenario_name, name_problems = _scenario_name(name, out)
    problems += name_problems
    if out.suffix.lower() not in (".yaml", ".yml"):
        problems.append(f"--out {out}: must end in .yaml or .yml")
    elif out.is_dir():
        problems.append(f"--out {out}: is a folder; give a file name")
    if method not in ("model", "bootstrap"):
        problems.append(f"--method {method}: use model or bootstrap")
    if holdout_periods < 0:
        problems.append(f"--holdout-periods {holdout_periods}: must be 0 or more")
    if horizon is not None and not 1 <= horizon <= MAX_PERIODS:
        problems.append(f"--horizon {horizon}: must be from 1 to {MAX_PERIODS:,}")
    if fit_report is not None and Path(fit_report).exists() and not Path(fit_report).is_dir():
        problems.append(f"--fit-report {fit_report}: is a file; give a folder")
    master, table_problems = read_tables(paths)
    problems += table_problems
    rules: dict[str, Any] = {}
    if rules_path is not None:
        rules_data, rules_problems = read_rules(rules_path)
        problems += rules_problems
        rules = rules_data or {}
    history: SalesHistory | None = None
    if master is not None:
        history, history_problems = read_sales(
            history_path, master.channel_ids, master.sku_ids, period_days=period_days or DEFAULT_PERIOD_DAYS
        )
        problems += history_problems
    elif not Path(history_path).is_file():
        problems.append(f"{history_path}: file not found")
    if period_days is not None and not 1 <= period_days <= 366:
        problems.append(f"--period-days {period_days}: must be from 1 to 366")
    if history is not None:
        if period_days is not None and not history.labels[0].isdigit():  # a dated history
            if period_days != history.period_days:
                problems.append(
                    f"--period-days {period_days}: the dates of {history.source} are {history.period_days} days "
                    "apart; leave --period-days out for a dated history"
                )
        fitted = history.periods - max(holdout_periods, 0)
        if holdout_periods > 0 and fitted < MIN_FIT_PERIODS:
            problems.append(
                f"--holdout-periods {holdout_periods}: leaves {fitted} of the history's {history.periods} periods "
                f"to fit; at least {MIN_FIT_PERIODS} are needed"
            )
        episode_days = (rules.get("episode") or {}).get("period_days")
        if episode_days is not None and episode_days != history.period_days:
            problems.append(
                f"{rules_path}: episode.period_days: {episode_days} but the history {history.source} has "
                f"{history.period_days}-day periods; leave it out (it is taken from the history)"
            )
    if problems:
        raise BuildError(problems)
    assert master is not None and history is not None

    from invalloc.history.fit import fit_demand

    fit_window = history.window(0, history.periods - holdout_periods)
    holdout = history.window(history.periods - holdout_periods, history.periods) if holdout_periods else None
    try:
        fit = fit_demand(fit_window, method=method)
    except ValueError as error:
        raise BuildError([str(error)]) from None

    episode = dict(rules.get("episode") or {})
    episode["period_days"] = history.period_days
    episode["horizon"] = (
        horizon
        if horizon is not None
        else holdout_periods or episode.get("horizon") or max(1, DEFAULT_HORIZON_DAYS // history.period_days)
    )
    fitted_labels = (fit_window.labels[0], fit_window.labels[-1])
    built = (
        f"Built by invalloc scenario build from {Path(history_path).name}: demand fitted "
        f"({method}) on {fit_window.periods} periods {fitted_labels[0]} … {fitted_labels[1]}"
        + (f"; the {holdout_periods} periods after them are in {HOLDOUT_FILE}." if holdout_periods else ".")
    )
    description = f"{rules['description'].strip()} {built}" if rules.get("description") else built
    notes = []
    if holdout_periods and episode["horizon"] > holdout_periods:
        notes.append(
            f"the horizon ({episode['horizon']}) is longer than the {holdout_periods} hold-out periods: "
            f"{HOLDOUT_FILE} cannot be replayed over a whole episode (give --horizon {holdout_periods} or less)"
        )
    never = sum(s.model == "none" for s in fit.series)
    if never:
        notes.append(f"{never} channel × SKU series never sold in the fitted window: no demand for them")
    scenario: dict[str, Any] = {
        "name": scenario_name,
        "description": description,
        "currency": rules.get("currency", "USD"),
        "products": master.products,
        "suppliers": master.suppliers,
        "locations": master.locations,
        "channels": master.channels,
        "lanes": master.lanes,
        "demand": fit.demand,
    }
    if "finance" in rules:
        scenario["finance"] = rules["finance"]
    if "rules" in rules:
        scenario["rules"] = rules["rules"]
    scenario["episode"] = episode

    files: dict[str, str] = {out.name: _yaml_text(scenario, paths, history_path, rules_path)}
    files.update(fit.files)
    if holdout is not None:
        files[HOLDOUT_FILE] = _holdout_csv(holdout)
    report: list[Path] = []

    def write_report() -> None:
        """The fit report, written once the scenario has validated and before it is moved in."""
        if fit_report is None:
            return
        from invalloc.history.fit_report import write_fit_report

        try:
            report.extend(Path(p) for p in write_fit_report(fit, Path(fit_report)))
        except OSError as error:
            raise BuildError([f"--fit-report {fit_report}: cannot be written ({error.strerror or error})"]) from None

    written = _write_validated(out, files, master, rules_path, write_report) + report
    streams = Counter(s.model for s in fit.series)
    return BuildResult(
        scenario=out,
        files=written,
        skus=len(master.products),
        channels=len(master.channels),
        streams_by_model=dict(streams),
        fitted_periods=fitted_labels,
        holdout_periods=holdout_periods,
        horizon=episode["horizon"],
        censored_in_holdout=int(holdout.stockout.sum()) if holdout is not None else 0,
        notes=notes,
    )


def _yaml_text(scenario: dict[str, Any], paths: TablePaths, history: Path, rules: Path | None) -> str:
    inputs = [
        paths.products,
        paths.locations,
        paths.lanes,
        paths.channels,
        paths.suppliers,
        paths.stock,
        rules,
        history,
    ]
    header = (
        "# Written by `invalloc scenario build` from "
        + ", ".join(Path(p).name for p in inputs if p is not None)
        + ".\n# Edit the tables and rebuild rather than editing this file by hand.\n"
    )
    return header + yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)


def _write_validated(
    out: Path, files: dict[str, str], master: MasterData, rules_path: Path | None, before_commit: Callable[[], None]
) -> list[Path]:
    """Write ``files`` into a scratch folder next to ``out``, validate the scenario there, call
    ``before_commit``, then move each file into place (an atomic rename each). Nothing is left
    behind on failure."""
    folder = out.parent
    created = folder  # the outermost folder this call creates (removed again on failure)
    while not created.parent.exists() and created.parent != created.parent.parent:
        created = created.parent
    created = None if created.exists() else created
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=folder))
    except OSError as error:
        raise BuildError([f"--out {out}: cannot be written ({error.strerror or error})"]) from None
    done = False
    try:
        for file_name, text in files.items():
            (scratch / file_name).write_text(text, encoding="utf-8")
        try:
            load_scenario(scratch / out.name)
        except ScenarioError as error:
            origins = master.origins
            rules_source = str(rules_path) if rules_path is not None else None
            raise BuildError([_map_problem(p, origins, rules_source, str(out)) for p in error.problems]) from None
        before_commit()
        written = []
        for file_name in files:
            target = folder / file_name
            os.replace(scratch / file_name, target)
            written.append(target)
        done = True
        return written
    except OSError as error:
        raise BuildError([f"--out {out}: cannot be written ({error.strerror or error})"]) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
            if not done and created is not None:
                shutil.rmtree(created)
