"""A model folder that is not the stage's model: one clear line each, naming the folder and what was expected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from medicane_hf.inference.command import main
from medicane_hf.inference.loading import ModelFolderError, load_model
from medicane_hf.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def error_line(capsys: pytest.CaptureFixture[str], script: str) -> str:
    """The one error line of a refused run (no traceback, nothing else from us)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{script}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def refused(stage: str, model: Path | str, dataset_dir: Path, tmp_path: Path, capsys) -> str:
    argv = [
        "--model_name_or_path",
        str(model),
        "--dataset_dir",
        str(dataset_dir),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    assert main(stage, argv) == 2
    assert not (tmp_path / "out" / "predictions.parquet").exists()
    return error_line(capsys, TASKS[stage].inference.script)


def test_a_folder_that_does_not_exist(dataset_dir, tmp_path, capsys) -> None:
    line = refused("detection", tmp_path / "no-such-model", dataset_dir, tmp_path, capsys)
    assert "no-such-model: no such folder" in line and "MedicaneVideoMAEForDetection" in line


def test_a_file_instead_of_a_folder(dataset_dir, tmp_path, capsys) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    line = refused("tracking", path, dataset_dir, tmp_path, capsys)
    assert f"{path} is a file" in line and "MedicaneVideoMAEForTracking" in line


def test_a_folder_without_weights(models, dataset_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(models["detection"] / "config.json", folder / "config.json")
    line = refused("detection", folder, dataset_dir, tmp_path, capsys)
    assert f"{folder} holds no weights" in line and "model.safetensors" in line


def test_a_folder_without_a_config(dataset_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    line = refused("detection", folder, dataset_dir, tmp_path, capsys)
    assert f"{folder} has no config.json" in line


def test_another_model_family(dataset_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "hf-videomae"
    config = VideoMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    VideoMAEForVideoClassification(config).save_pretrained(folder)
    line = refused("detection", folder, dataset_dir, tmp_path, capsys)
    assert (
        f"{folder} is a videomae model, not a medicane_videomae one" in line and "medicane-hf convert" in line
    )


def test_a_tracking_model_given_to_the_detection_script(models, dataset_dir, tmp_path, capsys) -> None:
    line = refused("detection", models["tracking"], dataset_dir, tmp_path, capsys)
    assert str(models["tracking"]) in line
    assert "MedicaneVideoMAEForTracking (the tracking stage's model)" in line
    assert "scripts/infer_classification.py expects a MedicaneVideoMAEForDetection" in line
    assert "scripts/infer_tracking.py" in line


def test_a_detection_model_given_to_the_tracking_script(models, dataset_dir, tmp_path, capsys) -> None:
    line = refused("tracking", models["detection"], dataset_dir, tmp_path, capsys)
    assert "scripts/infer_classification.py instead" in line


def test_a_checkpoint_missing_its_head(models, tmp_path) -> None:
    """Weights that leave part of the model unloaded would predict from random values: refused."""
    folder = tmp_path / "headless"
    shutil.copytree(models["detection"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    kept = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
    save_file(kept, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelFolderError, match=r"2 weights .* not in the checkpoint \(e.g. classifier.bias"):
        load_model(TASKS["detection"], str(folder))


def test_a_hub_id_that_cannot_be_read(dataset_dir, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = refused("detection", "nobody/no-such-medicane-model", dataset_dir, tmp_path, capsys)
    assert "nobody/no-such-medicane-model: no such folder, and no Hub model of that id could be read" in line


def test_the_stage_model_loads_in_eval_mode(models) -> None:
    model = load_model(TASKS["tracking"], str(models["tracking"]))
    assert type(model).__name__ == "MedicaneVideoMAEForTracking" and not model.training
    assert json.loads((models["tracking"] / "config.json").read_text())["architectures"] == [
        "MedicaneVideoMAEForTracking"
    ]
