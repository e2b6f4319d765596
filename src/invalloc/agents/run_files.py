"""The configuration a training run logs, and getting it back anywhere.

A run logs under ``config/``: the resolved experiment (``experiment.yaml``), the resolved
scenario beside it (``scenario.yaml``), the experiment as given, and a copy of every file
the scenario references (``demand.trace``, ``demand.bootstrap.history``) under ``files/``, listed with its path as
written and its sha256 in ``referenced_files.json``.

:func:`restore_config` downloads that folder and lays the copies out so that each path as
written (``traces/demand.csv``, ``../data/demand.csv``) resolves against the restored
scenario's folder to its logged copy. The scenario YAML stays byte-for-byte what was
logged, so its digest still matches the run's ``invalloc.scenario_hash``. It works from any
working directory and on any machine that can read the store.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from invalloc.agents.experiment import LoadedExperiment
from invalloc.agents.integrity import ArtifactIntegrityError, verify_hashes
from invalloc.config.loader import LoadedScenario
from invalloc.digests import sha256_file

#: Artifact folder of a run's configuration.
CONFIG_ARTIFACT = "config"
#: The list of referenced files inside ``config/``.
REFERENCES_FILE = "referenced_files.json"
_FILES = "files"


class RunFilesError(ValueError):
    """A run's logged configuration cannot be restored; the message is one line."""


def referenced_files(loaded: LoadedScenario) -> dict[str, tuple[str, Path]]:
    """Every file the scenario references: ``{yaml path: (path as written, file)}``."""
    scenario = loaded.scenario
    references = {}
    if scenario.demand.trace is not None:
        references["demand.trace"] = (scenario.demand.trace, loaded.base_dir / scenario.demand.trace)
    if scenario.demand.bootstrap is not None:
        history = scenario.demand.bootstrap.history
        references["demand.bootstrap.history"] = (history, loaded.base_dir / history)
    return references


def write_config(loaded: LoadedExperiment, folder: Path) -> None:
    """The resolved experiment, its scenario and the scenario's referenced files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    experiment = loaded.experiment.model_dump(mode="json")
    experiment["scenario"] = "scenario.yaml"
    experiment["scenario_overrides"] = {}
    (folder / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    scenario = loaded.scenario.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    (folder / "experiment_as_given.yaml").write_text(loaded.text)
    listed = []
    for index, (field, (written, path)) in enumerate(sorted(referenced_files(loaded.scenario).items())):
        copy = f"{_FILES}/{index}/{Path(written).name}"
        (folder / copy).parent.mkdir(parents=True)
        shutil.copyfile(path, folder / copy)
        listed.append({"field": field, "path": written, "artifact": copy, "sha256": sha256_file(path)})
    (folder / REFERENCES_FILE).write_text(json.dumps(listed, indent=1))


def _ups(written: str) -> int:
    """How many folders above the scenario's a relative path climbs (``../../x`` → 2)."""
    parts = Path(os.path.normpath(written)).parts
    count = 0
    while count < len(parts) and parts[count] == "..":
        count += 1
    return count


def restore_config(client: Any, run_id: str, work_dir: Path) -> Path:
    """Download run ``run_id``'s ``config/`` into ``work_dir``; returns its ``experiment.yaml``.

    Referenced files are placed where the scenario's paths as written find them. A run logged
    before files were recorded comes back as it was logged.

    Every downloaded file is checked against the sha256 recorded when it was logged
    (:func:`~invalloc.agents.integrity.verify_hashes`) before anything is read.

    :raises RunFilesError: the logged folder fails its hash check, or a referenced file is
        missing from the run or differs from its hash.
    """
    downloaded = Path(client.download_artifacts(run_id, CONFIG_ARTIFACT, str(work_dir / "logged")))
    try:
        verify_hashes(client.get_run(run_id), CONFIG_ARTIFACT, downloaded)
    except ArtifactIntegrityError as error:
        raise RunFilesError(str(error)) from None
    listing = downloaded / REFERENCES_FILE
    if not listing.is_file():
        return downloaded / "experiment.yaml"
    try:
        listed = json.loads(listing.read_text())
        relative = [entry["path"] for entry in listed if not Path(entry["path"]).is_absolute()]
    except (ValueError, KeyError, TypeError):
        raise RunFilesError(f"run {run_id}: {CONFIG_ARTIFACT}/{REFERENCES_FILE} is not a valid list") from None
    root = (work_dir / "restored").resolve()
    base = root.joinpath(*[f"up{i}" for i in range(max(map(_ups, relative), default=0))])
    base.mkdir(parents=True)
    for name in ("experiment.yaml", "scenario.yaml", "experiment_as_given.yaml"):
        if (downloaded / name).is_file():
            shutil.copyfile(downloaded / name, base / name)
    for entry in listed:
        written = Path(entry["path"])
        copy = (downloaded / entry["artifact"]).resolve()
        if not copy.is_relative_to(downloaded.resolve()) or not copy.is_file():
            raise RunFilesError(f"run {run_id}: the logged copy of {entry['field']} ({written}) is missing")
        if sha256_file(copy) != entry["sha256"]:
            raise RunFilesError(f"run {run_id}: the logged copy of {entry['field']} ({written}) differs from its hash")
        if written.is_absolute():
            # The scenario names the file by absolute path, which only that file can satisfy.
            if not written.is_file() or sha256_file(written) != entry["sha256"]:
                raise RunFilesError(
                    f"run {run_id}: {entry['field']} is the absolute path {written}, which no longer holds "
                    "the file the run was trained on"
                )
            continue
        target = Path(os.path.normpath(base / written))
        if not target.is_relative_to(root):
            raise RunFilesError(f"run {run_id}: {entry['field']} ({written}) points outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, target)
    return base / "experiment.yaml"


def restore_scenario(client: Any, run_id: str, work_dir: Path) -> LoadedScenario:
    """The scenario run ``run_id`` trained on, with its referenced files, restored into ``work_dir``.

    ``work_dir`` must outlive the scenario's use (a simulator reads the trace from it).
    """
    from invalloc.config.loader import load_scenario

    return load_scenario(restore_config(client, run_id, work_dir).with_name("scenario.yaml"))
