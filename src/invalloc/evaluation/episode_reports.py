"""Financial statements and trajectory plots of simulated episodes, for ``simulate`` and ``compare``.

``invalloc simulate --statements DIR --plot DIR``: :class:`EpisodeReports` checks the options
before any episode runs (an output folder that is a file, an unknown SKU or DC: one line naming
the option), collects each episode's books from a :class:`~invalloc.sim.statements.BookedSimulator`,
and writes the files when the run is over, each folder's files built aside and moved in place
only when complete.

``invalloc compare``: the comparison keeps, for its first episode, each policy's
:class:`EpisodeDetails` (:func:`episode_details`); :func:`write_comparison_sections` writes them
into the report folder (``statements/`` and ``trajectories/``) and returns the report's HTML
sections. The SKUs drawn there are the top ones by the value of the episode's demand at list
price — the revenue at full service, the same for every policy (common random numbers) — so
every policy is shown on the same SKUs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from invalloc.evaluation.trajectories import (
    DETAIL_SKUS,
    OVERVIEW_SKUS,
    TrajectoryError,
    choose,
    demand_value,
    draw_episode,
    episode_plots,
    file_stem,
    policy_label,
    save_figures,
    spec_labels,
    top_skus,
    trajectory_frame,
)
from invalloc.sim.statements import (
    BookedSimulator,
    Statements,
    build_statements,
    output_dir_problems,
    write_atomically,
    write_statement_files,
    write_statements,
)

if TYPE_CHECKING:
    from invalloc.evaluation.results import Comparison
    from invalloc.sim.network import Network
    from invalloc.sim.simulator import PeriodReport
    from invalloc.sim.statements import EpisodeBooks


class ReportingError(ValueError):
    """A ``--statements``/``--plot`` option that cannot be used, or a folder that cannot be written; one line."""


@dataclass
class EpisodeReports:
    """What ``simulate`` reports beyond KPIs: statements of every episode, plots of the first.

    :param network: the simulated scenario.
    :param statements_dir: folder of the statements (None: none are drawn up).
    :param plot_dir: folder of the plots (None: none are drawn).
    :param skus: SKUs with a trajectory plot (None: the top ones by revenue); ``dcs`` the DCs drawn.
    """

    network: Network
    statements_dir: Path | None
    plot_dir: Path | None
    skus: list[str] | None = None
    dcs: list[str] | None = None
    statements: list[tuple[int, Statements]] = field(default_factory=list)
    _first: tuple[int, Sequence[PeriodReport], EpisodeBooks] | None = None

    simulator_class = BookedSimulator

    @classmethod
    def checked(
        cls,
        network: Network,
        statements_dir: Path | None,
        plot_dir: Path | None,
        skus: Sequence[str] | None = None,
        dcs: Sequence[str] | None = None,
    ) -> EpisodeReports:
        """The options checked against the scenario and the file system.

        :raises ReportingError: the first bad option, one line naming it.
        """
        for option, folder in (("--statements", statements_dir), ("--plot", plot_dir)):
            if folder is not None:
                problems = output_dir_problems(folder, option)
                if problems:
                    raise ReportingError(problems[0])
        if plot_dir is None and (skus or dcs):
            raise ReportingError(f"{'--plot-skus' if skus else '--plot-dcs'}: draws only with --plot DIR")
        try:
            chosen_skus = choose(skus, network.skus, "--plot-skus", "SKU")
            chosen_dcs = choose(dcs, network.locations, "--plot-dcs", "DC")
        except TrajectoryError as error:
            raise ReportingError(str(error)) from None
        return cls(network, statements_dir, plot_dir, chosen_skus, chosen_dcs)

    def add(self, episode: int, reports: Sequence[PeriodReport], books: EpisodeBooks) -> None:
        """Keep what the reports need of one episode."""
        if self.statements_dir is not None:
            self.statements.append((episode, build_statements(books)))
        if self.plot_dir is not None and self._first is None:
            self._first = (episode, list(reports), books)

    @property
    def reconciled(self) -> bool:
        """Every episode's statements agree with the ledger to the cent."""
        return all(statements.reconciled for _, statements in self.statements)

    def write(self, policy_name: str | None, policy_spec: str) -> list[str]:
        """Write the files; returns one line per folder for the console.

        :raises ReportingError: a folder that cannot be written, naming its option.
        """
        label = policy_label(policy_spec, policy_name)
        currency = str(self.network.scenario.currency)
        lines = []
        if self.statements_dir is not None:
            reported = [(label, episode, statements) for episode, statements in self.statements]
            try:
                write_statements(reported, self.statements_dir, currency)
            except OSError as error:
                raise ReportingError(
                    f"--statements {self.statements_dir}: cannot be written ({error.strerror or error})"
                ) from None
            worst = max((s.largest_difference for _, s in self.statements), default=0.0)
            state = (
                f"reconciled with the ledger to the cent (largest difference {worst:.2g} {currency})"
                if self.reconciled
                else "NOT reconciled with the ledger: see reconciliation.csv"
            )
            lines.append(f"statements of {len(self.statements)} episode(s) written to {self.statements_dir}: {state}")
        if self.plot_dir is not None and self._first is not None:
            episode, reports, books = self._first
            text = f"episode {episode} (seed {books.seed})"
            drawn = episode_plots(reports, books, self.network, label, self.skus, self.dcs, text)
            try:
                files = write_atomically(self.plot_dir, lambda staging: save_figures(drawn, staging))
            except OSError as error:
                raise ReportingError(f"--plot {self.plot_dir}: cannot be written ({error.strerror or error})") from None
            pictures = [path.name for path in files if path.suffix == ".png"]
            lines.append(f"plots written to {self.plot_dir}: {', '.join(pictures)} (each with its CSV)")
        return lines


# --------------------------------------------------------------------------- compare
@dataclass
class EpisodeDetails:
    """One policy's first episode in a comparison: its statements and the trajectories of the
    top SKUs (:data:`~invalloc.evaluation.trajectories.OVERVIEW_SKUS`) by demand value."""

    statements: Statements
    trajectories: pd.DataFrame  # trajectory_frame rows of the overview SKUs, every DC
    skus: list[str]  # the overview SKUs, largest demand value first
    seed: int


def episode_details(reports: Sequence[PeriodReport], books: EpisodeBooks, network: Network) -> EpisodeDetails:
    """The statements and trajectories of one policy's episode (see :class:`EpisodeDetails`)."""
    skus = top_skus(demand_value(reports, network), network, min(OVERVIEW_SKUS, network.n_skus))
    return EpisodeDetails(build_statements(books), trajectory_frame(reports, books, network, skus), skus, books.seed)


def _money(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value + 0.0:,.2f}"


def _wide(frames: dict[str, pd.DataFrame], key: str) -> pd.DataFrame:
    """Statement lines × policies, money formatted with thousands separators and cents."""
    first = next(iter(frames.values()))
    wide = pd.DataFrame({key: first[key]})
    for label, frame in frames.items():
        wide[label] = [_money(v) for v in frame["amount"]]
    return wide


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="table")


def comparison_labels(comparison: Comparison) -> dict[str, str]:
    """Spec text → short, unique label (a run's name rather than its id)."""
    return spec_labels(comparison.specs)


def write_comparison_sections(comparison: Comparison, folder: Path) -> str:
    """Write the statements (``statements/``) and trajectory plots (``trajectories/``) of each
    policy's first episode into the report ``folder``; returns the report's HTML sections
    (empty when the comparison kept no details)."""
    labels = comparison_labels(comparison)
    details = {
        labels[text]: results[0].details
        for text, results in comparison.results.items()
        if results and results[0].details is not None
    }
    if not details:
        return ""
    e = html.escape
    currency = str(comparison.extra.get("currency") or "currency")
    first = next(iter(details.values()))
    reported = [(label, 0, d.statements) for label, d in details.items()]
    statements_dir = folder / "statements"
    statements_dir.mkdir()
    written = write_statement_files(reported, statements_dir, currency)
    parts = [
        f"<h2>Financial statements — episode 0 (seed {first.seed})</h2>",
        f"<p>Money in {e(currency)}, rounded to cents. The whole episode is booked (warm-up included). "
        "Files: "
        + ", ".join(f'<a href="statements/{e(p.name)}">{e(p.name)}</a>' for p in written)
        + ". The inventory roll-forward per DC × SKU is in the CSV and the workbook.</p><ul>",
    ]
    parts += [f"<li><b>{e(label)}</b>: {e(d.statements.summary_line(currency))}</li>" for label, d in details.items()]
    parts.append("</ul><h3>Income statement</h3>")
    parts.append(_table(_wide({k: d.statements.income_statement for k, d in details.items()}, "line")))
    parts.append("<h3>Balance sheet at the horizon</h3>")
    parts.append(_table(_wide({k: d.statements.balance_sheet for k, d in details.items()}, "line")))
    parts.append("<h3>Cash flow over the episode (direct method)</h3>")
    flows = {}
    for label, d in details.items():
        frame = d.statements.cash_flow
        total = frame.iloc[-1]
        over = frame["cash_over_buffer"].iloc[:-1].to_numpy(float)
        rows = [(name.replace("_", " "), float(total[name])) for name in frame.columns[1:-3]]
        rows.append(("lowest cash over the treasury buffer", float(over.min()) if over.size else math.nan))
        flows[label] = pd.DataFrame(rows, columns=["line", "amount"])
    parts.append(_table(_wide(flows, "line")))
    parts.append("<h3>Inventory roll-forward, all DCs and SKUs (at cost)</h3>")
    roll = {}
    for label, d in details.items():
        total = d.statements.inventory_rollforward.iloc[-1]
        names = [c for c in d.statements.inventory_rollforward.columns if c.endswith("_value")]
        roll[label] = pd.DataFrame([(n.removesuffix("_value").replace("_", " "), float(total[n])) for n in names],
                                   columns=["line", "amount"])  # fmt: skip
    parts.append(_table(_wide(roll, "line")))

    trajectories = folder / "trajectories"
    skus = first.skus
    parts += [
        f"<h2>What each policy did — episode 0 (seed {first.seed})</h2>",
        f"<p>Top {len(skus)} SKUs by the value of the episode's demand at list price (the same for every "
        f"policy); trajectories of the top {min(DETAIL_SKUS, len(skus))}. Each PNG has its CSV beside it "
        "(the simulator's period records).</p>",
    ]
    for label, d in details.items():
        stem = file_stem(label)
        drawn = draw_episode(d.trajectories, skus, skus[:DETAIL_SKUS], label, currency, f"episode 0 (seed {d.seed})")
        files = save_figures(drawn, trajectories / stem)
        parts.append(f"<h3>{e(label)}</h3>")
        for path in files:
            if path.suffix == ".png":
                rel = f"trajectories/{e(stem)}/{e(path.name)}"
                csv = rel.removesuffix(".png") + ".csv"
                parts.append(f'<p><img src="{rel}" alt="{e(path.stem)}"><br><a href="{csv}">{e(path.stem)}.csv</a></p>')
    return "\n".join(parts)


__all__ = [
    "EpisodeDetails",
    "EpisodeReports",
    "ReportingError",
    "comparison_labels",
    "episode_details",
    "write_comparison_sections",
]
