"""Fixtures of the inference tests: tiny detection and tracking models on the embedded default's contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking
from medicane_hf.processing_medicane import read_dataset_contract

# a calibration a trained model would carry (config.json of best/): the outputs must apply it
TEMPERATURE = 1.7
THRESHOLD = 0.45


def tiny_config(dataset_dir: Path, **overrides) -> MedicaneVideoMAEConfig:
    """The tiny preset with the recipe's heads, on the dataset's contract (what training would save)."""
    contract = read_dataset_contract(dataset_dir)
    return MedicaneVideoMAEConfig.from_preset(
        "tiny", **contract.shape_settings(), **contract.config_settings(), patch_embedding="conv", **overrides
    )


@pytest.fixture(scope="session")
def models(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"detection": folder, "tracking": folder}``: save_pretrained folders of untrained tiny models (random
    weights give varied outputs; what is tested is that every number reaches the files as it should)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    detector = MedicaneVideoMAEForDetection(
        tiny_config(
            dataset_dir,
            detection_pooling="heatmap",
            detection_temperature=TEMPERATURE,
            detection_threshold=THRESHOLD,
        )
    )
    tracker = MedicaneVideoMAEForTracking(tiny_config(dataset_dir, tracking_head="heatmap"))
    folders = {"detection": root / "detection", "tracking": root / "tracking"}
    detector.save_pretrained(folders["detection"])
    tracker.save_pretrained(folders["tracking"])
    return folders


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator (e.g. with --bf16): forget the previous one's settings."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="session")
def calibration() -> tuple[float, float]:
    """(temperature, threshold) saved with the detection model."""
    return TEMPERATURE, THRESHOLD


@pytest.fixture(scope="session")
def infer():
    """`run_inference`: a script's `main` in this process."""
    return run_inference


def run_inference(stage: str, argv: list[str]) -> int:
    """The script's `main` in this process, with the accelerate state of the previous run forgotten."""
    from accelerate.state import AcceleratorState

    from medicane_hf.inference.command import main

    AcceleratorState._reset_state(reset_partial_state=True)
    torch.set_num_threads(1)  # tiny models on a small shared machine: one thread is fastest
    return main(stage, argv)


@pytest.fixture(scope="session")
def detection_run(models, dataset_dir, tmp_path_factory) -> Path:
    """The detector on the whole test split of the embedded default, logits and embeddings saved."""
    out = tmp_path_factory.mktemp("detection") / "run"
    argv = [
        "--model_name_or_path", str(models["detection"]), "--dataset_dir", str(dataset_dir), "--split", "test",
        "--output_dir", str(out), "--save_logits", "--save_embeddings", "--batch_size", "32", "--num_workers", "1",
        "--no_progress",
    ]  # fmt: skip
    assert run_inference("detection", argv) == 0
    return out


@pytest.fixture(scope="session")
def tracking_run(models, dataset_dir, tmp_path_factory) -> Path:
    """The tracker on the test split (its clips with a centre target), logits saved."""
    out = tmp_path_factory.mktemp("tracking") / "run"
    argv = [
        "--model_name_or_path", str(models["tracking"]), "--dataset_dir", str(dataset_dir),
        "--output_dir", str(out), "--save_logits", "--num_workers", "0", "--no_progress",
    ]  # fmt: skip
    assert run_inference("tracking", argv) == 0
    return out
