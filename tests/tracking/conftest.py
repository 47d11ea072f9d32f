"""Fixtures of the predict-track tests: tiny detection and tracking models on the embedded default's contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking
from medicane_hf.processing_medicane import read_dataset_contract
from tests.tracking.hours import run_argv


@pytest.fixture(scope="session")
def tiny_models(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"detection": folder, "tracking": folder}`` of untrained tiny models (random weights: what is tested is
    that every number goes where it should), the detector with a saved calibration."""
    contract = read_dataset_contract(dataset_dir)
    root = tmp_path_factory.mktemp("track-models")
    torch.manual_seed(0)

    def config(**heads) -> MedicaneVideoMAEConfig:
        return MedicaneVideoMAEConfig.from_preset(
            "tiny", **contract.shape_settings(), **contract.config_settings(), patch_embedding="conv", **heads
        )

    models = {
        "detection": MedicaneVideoMAEForDetection(
            config(detection_pooling="heatmap", detection_temperature=1.5, detection_threshold=0.5)
        ),
        "tracking": MedicaneVideoMAEForTracking(config(tracking_head="heatmap")),
    }
    folders = {}
    for stage, model in models.items():
        folders[stage] = root / stage
        model.save_pretrained(folders[stage])
    return folders


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator: forget the previous one's settings."""
    torch.set_num_threads(1)  # tiny models on a small shared machine: one thread is fastest
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="session")
def batch_run(tiny_models, dataset_dir, tmp_path_factory) -> Path:
    """Every tile a detection (--threshold 0), scored against the basin's tracks."""
    out = tmp_path_factory.mktemp("predict-track") / "run"
    source = dataset_dir / "source"
    more = ("--tracks", str(source / "tracks.csv"), "--threshold", "0", "--min-duration-hours", "2")
    from medicane_hf.cli import main as cli_main

    assert cli_main(["predict-track", *run_argv(tiny_models, source / "frames", out, *more)]) == 0
    return out
