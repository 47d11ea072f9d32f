"""Tiny saved model folders of every head, and their outputs on one fixed input (shared by the hub tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForTracking,
    MedicaneVideoMAEModel,
)
from medicane_hf.pixels import to_pixel_values
from tests.hub.remote_outputs import outputs

# folder name -> (class, the Auto class that loads it, config overrides): every head and both patch embeddings
HEADS: dict[str, tuple[type, str, dict]] = {
    "pretraining": (MedicaneVideoMAEForPreTraining, "AutoModelForPreTraining", {}),
    "detection": (
        MedicaneVideoMAEForDetection,
        "AutoModelForVideoClassification",
        {"detection_pooling": "heatmap", "patch_embedding": "conv", "drop_path_rate": 0.1},
    ),
    "tracking": (
        MedicaneVideoMAEForTracking,
        "AutoModelForKeypointDetection",
        {"tracking_head": "heatmap", "patch_embedding": "conv"},
    ),
}


def tiny_config(**overrides) -> MedicaneVideoMAEConfig:
    """The tiny preset with 2 layers and this data's own statistics (not the placeholder defaults)."""
    settings = {"num_hidden_layers": 2, "image_mean": [0.3, 0.4, 0.5], "image_std": [0.2, 0.25, 0.3]}
    return MedicaneVideoMAEConfig.from_preset("tiny", **{**settings, **overrides})


def clips(config: MedicaneVideoMAEConfig, batch: int = 2, seed: int = 0) -> np.ndarray:
    """uint8 clips ``[B, T, H, W, C]`` of the config's shape."""
    rng = np.random.default_rng(seed)
    shape = (batch, config.num_frames, config.image_size, config.image_size, config.num_channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def save_heads(root: Path) -> dict[str, Path]:
    """One saved folder per head (seeded weights); returns name -> folder."""
    folders = {}
    for index, (name, (model_class, _, overrides)) in enumerate(HEADS.items()):
        torch.manual_seed(index)
        model = model_class(tiny_config(**overrides)).eval()
        folders[name] = root / name
        model.save_pretrained(folders[name])
    return folders


def package_outputs(folders: dict[str, Path], video: np.ndarray) -> dict[str, dict[str, torch.Tensor]]:
    """Outputs of the package's classes loaded from `folders`: name -> key -> tensor (also ``<name>/encoder``)."""
    results = {}
    for name, folder in folders.items():
        model_class = HEADS[name][0]
        model = model_class.from_pretrained(folder)
        pixel_values = to_pixel_values(video, model.config.image_mean, model.config.image_std)
        results[name] = outputs(model, name, pixel_values)
        results[f"{name}/encoder"] = outputs(
            MedicaneVideoMAEModel.from_pretrained(folder), "encoder", pixel_values
        )
    return results
