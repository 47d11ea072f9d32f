"""A training run's end: model cards in best/ and final/, the chosen folder pushed once (the Trainer pushes
nothing itself), and --push_to_hub without a repo id refused in one line before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from medicane_hf.training import run
from tests.hub.test_push import FOLDER_FILES, FakeHub
from tests.runs import quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_run_writes_cards_and_pushes_the_best_folder(monkeypatch, dataset_dir: Path, tmp_path: Path) -> None:
    hub = FakeHub(monkeypatch)
    out = tmp_path / "run"
    flags = quick_flags(dataset_dir, out) + [
        "--push_to_hub",
        "--hub_model_id",
        "org/detector",
        "--hub_private_repo",
        "true",
    ]
    assert run.main("detection", flags) == 0
    for name in ("best", "final"):
        card = ModelCard.load(out / name / "README.md")
        assert card.data.pipeline_tag == "video-classification"
        assert "not for real forecasts" in card.text  # the embedded default is the synthetic basin
        assert 'model_id = "org/detector"' in card.text
    assert hub.repos == [("org/detector", True)]
    (commit,) = hub.commits  # one push: the chosen folder, no checkpoint pushed by the Trainer
    uploaded = set(commit["files"])
    assert FOLDER_FILES | {"README.md", "metrics.json", "training_arguments.yaml"} <= uploaded
    assert not [name for name in uploaded if name.startswith("checkpoint") or "optimizer" in name]
    assert commit["files"]["model.safetensors"] == (out / "best" / "model.safetensors").read_bytes()
    card = ModelCard.load(out / "best" / "README.md")
    test_rows = {r.metric_type for r in card.data.eval_results if r.dataset_split == "test"}
    assert "balanced_accuracy" in test_rows
    # the same command again: the run is finished, nothing trains, the chosen folder is pushed again
    assert run.main("detection", flags) == 0
    assert len(hub.commits) == 2 and hub.commits[1]["files"] == commit["files"]


def test_push_without_repo_id_is_refused_before_training(
    monkeypatch, dataset_dir: Path, tmp_path: Path, capfd
) -> None:
    hub = FakeHub(monkeypatch)
    out = tmp_path / "run"
    assert run.main("detection", quick_flags(dataset_dir, out) + ["--push_to_hub"]) == 2
    errors = [line for line in capfd.readouterr().err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "--push_to_hub needs --hub_model_id ORG/NAME" in errors[0]
    assert not (out / "best").exists() and hub.repos == []
