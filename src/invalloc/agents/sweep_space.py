"""What a sweep trains: the configurations (``--set`` overrides) × the seeds, checked before anything runs.

``--set hyperparameters.learning_rate=1e-4,3e-4`` gives one experiment setting (a dotted key of the
experiment file) and the values a sweep tries for it; several ``--set`` options span a grid. Every
value, and every configuration of the grid, is validated against the experiment schema here, so a
bad key or value is one ``--set KEY=VALUE: …`` problem before a cluster starts or a run exists.

Standard library, yaml and the experiment schema only (no Ray).
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from typing import Any

import yaml

from invalloc.agents.experiment import MAX_TRAIN_SEED, ExperimentError, LoadedExperiment, load_experiment

#: Searches ``invalloc sweep`` runs: every configuration, a random subset, or Optuna's TPE.
SEARCHES = ("grid", "random", "optuna")
#: Most configurations a sweep's grid may span (each is validated before the sweep starts).
MAX_CONFIGURATIONS = 1_000
#: Keys a sweep does not take from ``--set``, and why.
_FIXED_KEYS = {
    "name": "the trials of a sweep keep the experiment's name (their MLflow experiment)",
    "seed": "give the seeds with --seeds",
    "scenario": "a sweep trains on the experiment's scenario; sweep scenario settings with scenario_overrides.KEY",
}
#: Seed of the random choice of configurations (``--search random``) and of Optuna's sampler.
SEARCH_SEED = 0

#: One configuration: dotted experiment key → value, in the order the ``--set`` options were given.
Overrides = dict[str, Any]


class SweepError(ValueError):
    """A sweep that cannot run as asked; ``problems`` holds one line each, naming the option or key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Setting:
    """One ``--set KEY=V1,V2,…``: the dotted key, its values and how each was written."""

    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class SweepSpace:
    """The settings a sweep varies, its seeds and how configurations are chosen.

    :param settings: the ``--set`` options, in the order given.
    :param seeds: every configuration is trained once per seed.
    :param search: ``grid`` (all configurations), ``random`` (``samples`` of them, drawn without
        replacement with :data:`SEARCH_SEED`) or ``optuna`` (``samples`` suggestions of Optuna's
        sampler, each trained on every seed; it sees the mean over seeds).
    """

    settings: tuple[Setting, ...]
    seeds: tuple[int, ...]
    search: str = "grid"
    samples: int | None = None

    def grid(self) -> list[Overrides]:
        """Every configuration (the product of the settings' values); ``[{}]`` without settings."""
        keys = [setting.key for setting in self.settings]
        return [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*(s.values for s in self.settings))
        ]

    def configurations(self) -> list[Overrides]:
        """The configurations a grid or random search trains (Optuna's are chosen as it runs)."""
        grid = self.grid()
        if self.search != "random" or self.samples is None or self.samples >= len(grid):
            return grid
        chosen = sorted(random.Random(SEARCH_SEED).sample(range(len(grid)), self.samples))
        return [grid[index] for index in chosen]

    def trials(self) -> int:
        """How many trainings the sweep runs."""
        if self.search == "optuna":
            return (self.samples or 0) * len(self.seeds)
        return len(self.configurations()) * len(self.seeds)

    def overrides_of(self, indices: dict[str, int]) -> Overrides:
        """The configuration of Optuna's choice: value index per setting (``{"s0": 1, …}``)."""
        return {s.key: s.values[indices[f"s{i}"]] for i, s in enumerate(self.settings)}


def configuration_label(overrides: Overrides) -> str:
    """``key=value key=value`` (the experiment as it is: ``(experiment)``)."""
    if not overrides:
        return "(experiment)"
    return " ".join(f"{key}={_text(value)}" for key, value in overrides.items())


def configuration_key(overrides: Overrides) -> str:
    """Canonical JSON of a configuration: trials with equal keys differ only by seed."""
    return json.dumps(overrides, sort_keys=True, separators=(",", ":"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def parse_value(text: str) -> Any:
    """A ``--set`` value: a number (``1e-4``, ``64``), true/false/null, a ``[list]`` or a string."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        pass
    else:
        return number
    try:
        return yaml.safe_load(stripped) if stripped else ""
    except yaml.YAMLError:
        return stripped


def split_values(text: str) -> list[str]:
    """``1e-4,3e-4`` → two values; commas inside ``[…]`` or ``{…}`` belong to their value."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_settings(options: list[str]) -> tuple[list[Setting], list[str]]:
    """The ``--set KEY=V1,V2`` options and one problem line per malformed one."""
    settings: list[Setting] = []
    problems: list[str] = []
    seen: set[str] = set()
    for option in options:
        if "=" not in option:
            problems.append(
                f"--set {option}: expected KEY=VALUE[,VALUE…], e.g. hyperparameters.learning_rate=1e-4,3e-4"
            )
            continue
        key, text = (part.strip() for part in option.split("=", 1))
        parts = key.split(".")
        if not key or not all(part.replace("_", "").replace("-", "").isalnum() for part in parts):
            problems.append(f"--set {option}: {key!r} is not a dotted experiment key such as hyperparameters.gamma")
            continue
        if parts[0] in _FIXED_KEYS:
            problems.append(f"--set {key}: cannot be swept ({_FIXED_KEYS[parts[0]]})")
            continue
        if key in seen:
            problems.append(f"--set {key}: given twice (list all its values in one --set {key}=V1,V2)")
            continue
        seen.add(key)
        texts = split_values(text)
        if any(not value for value in texts):
            problems.append(f"--set {key}={text}: an empty value (values are separated by commas)")
            continue
        values = [parse_value(value) for value in texts]
        keys = [configuration_key({"v": value}) for value in values]
        if len(set(keys)) != len(keys):
            problems.append(f"--set {key}={text}: a value is given twice")
            continue
        settings.append(Setting(key, tuple(values), tuple(texts)))
    return settings, problems


def check_space(
    experiment: str, settings: list[Setting], seeds: list[int] | None, search: str, samples: int | None
) -> tuple[LoadedExperiment, SweepSpace]:
    """Load ``experiment`` and check that every value and configuration of the sweep is valid.

    Without ``seeds`` the sweep trains on the experiment's own seed.

    Each value is checked alone first, so a bad one is named with its ``--set`` key; then every
    configuration of the grid (settings can clash, e.g. a batch larger than the rollout), then
    every seed.

    :raises ExperimentError: the experiment itself is invalid (lines name its file).
    :raises SweepError: a bad option, key or value (lines name the ``--set`` key).
    """
    problems: list[str] = []
    if search not in SEARCHES:
        problems.append(f"--search {search}: must be one of {', '.join(SEARCHES)}")
    elif search == "grid" and samples is not None:
        problems.append(f"--samples {samples}: only --search random or optuna draws samples (grid trains them all)")
    elif search != "grid" and samples is None:
        problems.append(f"--search {search}: give the number of configurations to try with --samples N")
    elif search == "optuna" and not settings:
        problems.append("--search optuna: give the settings to search with --set KEY=V1,V2,…")
    if problems:
        raise SweepError(problems)
    base = load_experiment(experiment)
    seeds = list(seeds) if seeds else [base.experiment.seed]
    space = SweepSpace(tuple(settings), tuple(seeds), search, samples)
    size = 1
    for setting in settings:
        size *= len(setting.values)
    if size > MAX_CONFIGURATIONS:
        raise SweepError([f"--set: {size:,} configurations; a sweep takes at most {MAX_CONFIGURATIONS:,}"])
    for setting in settings:
        for value, text in zip(setting.values, setting.texts, strict=True):
            problems += _problems(base.source, {setting.key: value}, f"--set {setting.key}={text}")
    if problems:
        raise SweepError(problems)
    if len(settings) > 1:
        for overrides in space.grid():
            problems += _problems(base.source, overrides, f"--set {configuration_label(overrides)}")
            if len(problems) >= 20:
                break
    problems += [
        f"--seeds {seed}: a training seed is at most {MAX_TRAIN_SEED:,}" for seed in seeds if seed > MAX_TRAIN_SEED
    ]
    if problems:
        raise SweepError(problems)
    return base, space


def _problems(source: str, overrides: Overrides, where: str) -> list[str]:
    try:
        load_experiment(source, overrides=overrides)
    except ExperimentError as error:
        return [f"{where}: {problem}" for problem in error.problems]
    return []
