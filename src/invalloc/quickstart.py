"""``invalloc quickstart``: the whole path a new user walks, in about five minutes on 2 cores.

1. train a policy anchored on the tuned rule on ``retail`` (``invalloc/experiments/retail_ars_quick.yaml``:
   Augmented Random Search on common random numbers, a bounded correction to the tuned
   proportional rule, so it starts *from* that rule), tracked in MLflow and registered as
   :data:`POLICY_MODEL`;
2. compare it with the rule-based baselines, each with the parameters tuned for ``retail``
   (``invalloc/tuned/retail/*.yaml``, ``NAME@tuned``), on the same held-out demand (common
   random numbers, paired statistics), with an HTML report; the reference is the best tuned
   baseline, and the closing line states the learned policy's paired difference from it with
   its 95% CI and verdict, whichever way it goes;
3. export the learned policy as a deterministic rule table, verify it and register it
   (``invalloc-rules-retail`` @ ``candidate``, a pyfunc model);
4. say where everything is.

Comparison seeds start at :data:`COMPARISON_SEED`, away from the training episodes (random
63-bit seeds) and from the evaluation seeds that chose the best model (``first_seed`` of
the experiment), so the comparison is on demand no step of training has seen.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

#: The experiment the quickstart trains.
EXPERIMENT = "retail_ars_quick"
#: Every rule-based baseline, each with the parameters tuned for the scenario and shipped with
#: invalloc (``scripts/tune_baselines.py``): the standard a learned policy has to beat.
BASELINES = tuple(f"{name}@tuned" for name in ("base_stock", "s_S", "proportional", "priority", "fixed_split"))
#: Seed of the first comparison episode.
COMPARISON_SEED = 2_000_000
#: The registered model the quickstart's policy becomes a version of (its rule table:
#: ``invalloc-rules-retail``, registered by the export).
POLICY_MODEL = "invalloc-policy-retail"


@dataclass
class QuickstartResult:
    run_id: str
    learned_spec: str
    report: Path
    comparison_run_id: str | None
    learned_reward: float
    baseline_rewards: dict[str, float]
    #: The best tuned baseline (by mean reward on the comparison episodes): the reference.
    reference: str
    #: Learned − reference mean episode reward, its 95% CI and the paired verdict
    #: (``better``, ``worse``, ``no significant difference``).
    difference: float
    difference_ci: tuple[float, float]
    verdict: str
    rule_table: Path | None
    seconds: float

    def verdict_line(self) -> str:
        """The quickstart's closing sentence: the paired comparison with the best tuned baseline."""
        low, high = self.difference_ci
        outcome = {
            "better": "BEATS",
            "worse": "does NOT beat (it is worse than)",
            "no significant difference": "does NOT beat (no significant difference from)",
        }.get(self.verdict, f"cannot be told apart ({self.verdict}) from")
        return (
            f"the learned policy ({self.learned_reward:,.0f}) {outcome} the best tuned baseline {self.reference} "
            f"({self.baseline_rewards[self.reference]:,.0f}): paired difference {self.difference:+,.0f} per episode, "
            f"95% CI [{low:+,.0f}, {high:+,.0f}]"
        )


def run_quickstart(
    out_dir: Path,
    timesteps: int | None = None,
    episodes: int = 30,
    tracking_uri: str | None = None,
    export: bool = True,
    console: Console | None = None,
) -> QuickstartResult:
    """Train, compare, export; returns where the results are. Output folders are made fresh."""
    from invalloc.agents.experiment import load_experiment
    from invalloc.agents.training import default_run_name, train
    from invalloc.evaluation.compare import run_comparison
    from invalloc.evaluation.report import check_out_dir, write_report
    from invalloc.tracking import configure_tracking

    console = console or Console(stderr=True)
    began = time.perf_counter()
    out_dir = Path(out_dir)
    # Fail on an unusable output folder now, not after minutes of training (and before the
    # store or the folder is touched).
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir}: is a file, not a folder")
    parent = out_dir.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FileExistsError(f"--out {out_dir}: {parent} is a file, not a folder")
    if out_dir.is_dir():
        check_out_dir(out_dir / "report")
    rules = out_dir / "rules"
    if rules.exists() and (not rules.is_dir() or (any(rules.iterdir()) and not (rules / "manifest.json").is_file())):
        raise FileExistsError(
            f"--out {out_dir}: {rules} exists and is not a rule table directory; choose another --out"
        )
    uri = configure_tracking(tracking_uri)
    out_dir.mkdir(parents=True, exist_ok=True)

    console.rule(f"1/4 · training on retail ({EXPERIMENT}: ARS, anchored on the tuned proportional rule)")
    experiment = load_experiment(EXPERIMENT, timesteps=timesteps)
    trained = train(
        experiment,
        tracking_uri=uri,
        run_name=f"quickstart-{default_run_name(experiment)}",
        register=POLICY_MODEL,
    )
    learned = f"run:{trained.run_id}"
    console.print(
        f"MLflow run {trained.run_id}: best evaluation reward {trained.best_reward:,.0f}; "
        f"registered as {POLICY_MODEL} version {trained.registered_version}",
        markup=False,
    )

    console.rule(f"2/4 · comparing with the tuned baselines on {episodes} held-out episodes")
    rendered = Path(tempfile.mkdtemp(prefix="invalloc-report-"))  # drawn once for MLflow, then copied
    try:
        comparison = run_comparison(
            "retail",
            [learned, *BASELINES],
            episodes=episodes,
            seed=COMPARISON_SEED,
            tracking_uri=uri,
            rendered_report=rendered,
        )
        console.print(summary_table(comparison))
        report = write_report(comparison, out_dir / "report", rendered)
    finally:
        shutil.rmtree(rendered, ignore_errors=True)
    means = comparison.kpis
    rewards = {
        label: float(means.query("policy == @label and kpi == 'total_reward'")["mean"].iloc[0])
        for label in comparison.labels
    }

    paired = comparison.paired.query("policy == @learned and kpi == 'total_reward'").iloc[0]

    table_dir: Path | None = None
    table_manifest: dict = {}
    if export:
        console.rule("3/4 · exporting the learned policy as a rule table")
        from invalloc.export import export_rule_table
        from invalloc.rules import verify_rule_table

        table_dir = out_dir / "rules"
        table_manifest = export_rule_table(trained.run_id, out_dir=table_dir, tracking_uri=uri, console=console)
        verify_rule_table(table_dir)
        console.print(f"rule table written and verified: {table_dir}", markup=False)

    result = QuickstartResult(
        run_id=trained.run_id,
        learned_spec=learned,
        report=report,
        comparison_run_id=comparison.mlflow_run_id,
        learned_reward=rewards[learned],
        baseline_rewards={b: rewards[b] for b in BASELINES},
        reference=comparison.reference,
        difference=float(paired["mean_difference"]),
        difference_ci=(float(paired["ci_low"]), float(paired["ci_high"])),
        verdict=str(paired["verdict"]),
        rule_table=table_dir,
        seconds=time.perf_counter() - began,
    )
    console.rule("4/4 · where the results are")
    console.print(result.verdict_line(), markup=False, soft_wrap=True)
    console.print(f"report: {report}", markup=False)
    if table_dir is not None:
        console.print(f"rule table: {table_dir}  (invalloc rules show {table_dir})", markup=False)
    console.print(f"MLflow training run {trained.run_id}, comparison run {comparison.mlflow_run_id}", markup=False)
    registered = [f"models:/{POLICY_MODEL}/{trained.registered_version}"]
    if table_manifest.get("registry"):
        registry = table_manifest["registry"]
        registered.append(f"models:/{registry['model_name']}/{registry['version']} (the rule table)")
    console.print(f"registered: {', '.join(registered)}", markup=False)
    if not uri.startswith("http"):
        console.print(f"open the MLflow UI: mlflow ui --backend-store-uri {uri}", markup=False)
    console.print(f"quickstart took {result.seconds / 60:.1f} minutes", markup=False)
    return result


def _short(label: str, width: int = 13) -> str:
    """A policy label for an 80-column table: tuned baselines by name, long labels cut with …
    (the learned policy is named ``learned``, its run name in the caption)."""
    label = label.removesuffix("@tuned")
    return label if len(label) <= width else label[: width - 1] + "…"


def summary_table(comparison) -> Table:
    """One row per policy: headline KPIs (minimum cash and the rest: the report) and the paired
    reward difference from the reference,
    each as mean ± the half-width of its 95% confidence interval (t intervals are symmetric),
    narrow enough for an 80-column terminal; the report has the intervals' bounds."""
    from invalloc.evaluation.report import format_p

    kpis, paired = comparison.kpis, comparison.paired
    columns = [("total_reward", "reward"), ("profit", "profit"), ("fill_rate", "fill rate"),
               ("contract_breaches", "contract breaches")]  # fmt: skip
    tuned = (
        " (baselines: parameters tuned for the scenario)"
        if any(label.endswith("@tuned") for label in comparison.labels)
        else ""
    )
    learned = {s.text: comparison.label(s.text) for s in comparison.specs if s.kind == "learned"}
    names = {text: ("learned" if len(learned) == 1 else f"learned {i + 1}") for i, text in enumerate(learned)}
    table = Table(
        title=f"{comparison.scenario} · {comparison.episodes_text()} · mean ± 95% CI",
        caption=f"reference: {comparison.label(comparison.reference)}{tuned}; "
        + "".join(f"{names[text]}: {label}; " for text, label in learned.items())
        + "every table, per-tier fill rates and plots: the HTML report",
    )
    table.add_column("policy", no_wrap=True)
    for _, title in columns:
        table.add_column(title, justify="right")
    table.add_column("reward − reference", justify="right")
    for label in comparison.labels:
        row = [names.get(label) or _short(comparison.label(label))]
        for key, _ in columns:
            match = kpis[(kpis["policy"] == label) & (kpis["kpi"] == key)]
            if match.empty:
                row.append("–")
                continue
            item = match.iloc[0]
            digits = ".3f" if key == "fill_rate" else ",.0f"
            half_width = (item["ci_high"] - item["ci_low"]) / 2
            row.append(f"{item['mean']:{digits}}\n± {half_width:{digits}}")
        difference = paired[(paired["policy"] == label) & (paired["kpi"] == "total_reward")]
        if label == comparison.reference or difference.empty:
            row.append("reference")
        else:
            d = difference.iloc[0]
            half_width = (d["ci_high"] - d["ci_low"]) / 2
            p_value = format_p(d["p_value"])
            row.append(
                f"{d['mean_difference']:+,.0f}\n± {half_width:,.0f}\np{'' if p_value[0] == '<' else '='}{p_value}"
            )
        table.add_row(*row)
    return table


def quickstart(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report and the rule table.")] = Path(
        "quickstart-results"
    ),
    timesteps: Annotated[
        int | None,
        typer.Option("--timesteps", min=1, max=10**10, help="Training steps (default: the experiment's)."),
    ] = None,
    episodes: Annotated[int, typer.Option("--episodes", min=2, max=1_000_000, help="Comparison episodes.")] = 30,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    ] = None,
    export: Annotated[bool, typer.Option("--export/--no-export", help="Export the learned policy as rules.")] = True,
) -> None:
    """Train a policy on retail, compare it with the tuned baselines, export it as a rule table (a few minutes)."""
    from invalloc.agents.experiment import ExperimentError
    from invalloc.agents.training import TrainingStopped
    from invalloc.console import error_console, fail
    from invalloc.evaluation.compare import ComparisonError
    from invalloc.export.exporter import ExportError
    from invalloc.rules import RuleTableError
    from invalloc.sim.policy import PolicyError
    from invalloc.tracking import TrackingError

    try:
        run_quickstart(out, timesteps=timesteps, episodes=episodes, tracking_uri=tracking_uri, export=export)
    except ExperimentError as error:
        fail(error.lines())
    except (TrackingError, PolicyError, FileExistsError, ComparisonError, ExportError, RuleTableError) as error:
        fail([error])
    except OSError as error:
        fail([f"--out {out}: cannot be written ({error.strerror or error})"])
    except TrainingStopped as error:
        error_console.print(str(error), markup=False)
        raise typer.Exit(code=130) from None
