"""The simple methods the VideoMAE models must beat (benchmarks/bench_skill.py), on the same clips and splits.

Not part of the package: they exist to measure the package's models against.

- ``constant``: the train split's mean centre (tracking).
- ``eye_finder``: learning-free. The mean of the clip's last two frames; per pixel the colour distance
  between a disc of radius ``r`` and the ring ``r..R`` around it (an eye is a small clear disc in a cloud
  ring); the centre is the arg-max refined by the score-weighted centroid of its 3 x 3 neighbourhood, the
  detection score is the map's maximum. Its two knobs (``r``, ``R``) are set on the train split's
  tracking clips (median error), its detection threshold on validation.
- ``small_cnn``: a 5-layer dilated CNN on the last four frames at full resolution, a per-pixel heat map
  read out as the VideoMAE tracker's is (`HeadRecipe`: soft arg-max or the peak, its loss: the map's
  likelihood or the soft arg-max's MSE plus a centre term) or heat-map-weighted pooling (detection), trained
  with the same augmentation, losses and selection on validation as the VideoMAE heads, for the same wall
  time.

Inputs are what the package's datasets give: normalised ``pixel_values`` ``[B, T, C, H, W]``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medicane_hf.evaluation.detection import detection_metrics
from medicane_hf.modeling_medicane import centre_loss, peak_readout_with_spread, soft_argmax_2d

# ----------------------------------------------------------------------------------------------- eye finder


def _disc(radius: float) -> torch.Tensor:
    """A normalised disc kernel ``[1, 1, K, K]`` (pixel centres within ``radius``)."""
    half = int(np.ceil(radius))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = (np.hypot(xx, yy) <= radius + 1e-6).astype(np.float32)
    return torch.from_numpy(kernel / kernel.sum())[None, None]


def _local_mean(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-channel mean under `kernel` of ``[B, C, H, W]`` (edges padded by replication)."""
    channels = image.shape[1]
    pad = kernel.shape[-1] // 2
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(padded, kernel.expand(channels, 1, -1, -1).contiguous(), groups=channels)


@dataclass(frozen=True)
class EyeFinder:
    """Disc-versus-ring colour contrast on the last two frames (see the module docstring)."""

    eye_radius: float = 1.5
    ring_radius: float = 4.0

    def score_map(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[B, H, W]`` contrast (norm over channels of disc mean - ring mean)."""
        image = pixel_values[:, -2:].float().mean(dim=1)
        inner_kernel, outer_kernel = _disc(self.eye_radius), _disc(self.ring_radius)
        disc, outer = _local_mean(image, inner_kernel), _local_mean(image, outer_kernel)
        # pixels under each disc (a kernel is 1 / count on its disc): the ring's mean from the two disc means
        n_disc, n_outer = 1.0 / float(inner_kernel.max()), 1.0 / float(outer_kernel.max())
        ring = (outer * n_outer - disc * n_disc) / (n_outer - n_disc)
        return (disc - ring).norm(dim=1)

    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres ``[B, 2]`` (x, y, tile px) and detection scores ``[B]``."""
        score = self.score_map(pixel_values)
        batch, height, width = score.shape
        flat = score.reshape(batch, -1).argmax(dim=1)
        y0, x0 = (flat // width).long(), (flat % width).long()
        centres = []
        for b in range(batch):
            ys = slice(max(int(y0[b]) - 1, 0), min(int(y0[b]) + 2, height))
            xs = slice(max(int(x0[b]) - 1, 0), min(int(x0[b]) + 2, width))
            window = score[b, ys, xs]
            weight = (window - window.min()).clamp_min(0) + 1e-12
            gy, gx = torch.meshgrid(
                torch.arange(ys.start, ys.stop, dtype=torch.float32),
                torch.arange(xs.start, xs.stop, dtype=torch.float32),
                indexing="ij",
            )
            centres.append(
                torch.stack([(weight * gx).sum() / weight.sum(), (weight * gy).sum() / weight.sum()])
            )
        return torch.stack(centres), score.reshape(batch, -1).amax(dim=1)


def fit_eye_finder(train_tracking: Dataset, knobs: Iterable[tuple[float, float]] | None = None) -> EyeFinder:
    """The (eye, ring) radii with the lowest median train centre error (px)."""
    knobs = list(
        knobs or [(r, big) for r in (1.0, 1.5, 2.0, 3.0) for big in (3.0, 4.0, 6.0, 8.0) if big > r + 1]
    )
    batches = list(DataLoader(train_tracking, batch_size=64))
    best, best_error = EyeFinder(), float("inf")
    for eye, ring in knobs:
        finder = EyeFinder(eye, ring)
        errors = torch.cat([(finder(b["pixel_values"])[0] - b["labels"]).norm(dim=1) for b in batches])
        error = float(errors.median())
        if error < best_error:
            best, best_error = finder, error
    return best


# ------------------------------------------------------------------------------------------------ small CNN


@dataclass(frozen=True)
class HeadRecipe:
    """The heat-map read-out and losses of the VideoMAE heads (from their configs), which the CNN copies.

    ``tracking_loss``: ``"heatmap"`` (the map's likelihood alone) or ``"mse"`` (the soft arg-max's MSE in half-tile
    units + ``centre_loss_weight`` x the centre cross-entropy); ``readout``: ``"soft_argmax"`` or ``"peak"``
    (within ``peak_radius`` px of the most likely pixel); ``target_sigma``: the centre target's blur (px, 0 =
    exact); ``label_noise``: the labels' own error (px), the map blurred by it before the likelihood.
    """

    tracking_loss: str = "mse"
    centre_loss_weight: float = 0.1
    readout: str = "soft_argmax"
    peak_radius: float = 3.0
    target_sigma: float = 0.0
    label_noise: float = 0.0

    @classmethod
    def of(cls, config) -> HeadRecipe:
        """The recipe of a `MedicaneVideoMAEConfig` (a trained tracker's or detector's)."""
        return cls(
            tracking_loss=config.tracking_loss,
            centre_loss_weight=config.tracking_centre_loss_weight,
            readout=config.tracking_readout,
            peak_radius=config.tracking_peak_radius,
            target_sigma=config.heatmap_target_sigma,
            label_noise=config.heatmap_label_noise,
        )


class SmallCNN(nn.Module):
    """Last ``frames`` frames stacked on channels -> per-pixel features ``[B, width, H, W]`` and heat logits."""

    def __init__(
        self,
        channels: int = 3,
        frames: int = 4,
        width: int = 32,
        num_labels: int = 2,
        recipe: HeadRecipe | None = None,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.recipe = recipe or HeadRecipe()
        layers: list[nn.Module] = [nn.Conv2d(channels * frames, width, 3, padding=1), nn.GELU()]
        for dilation in (1, 2, 4, 8):  # receptive field 33 px: a storm and its surroundings
            layers += [nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation), nn.GELU()]
        self.trunk = nn.Sequential(*layers)
        self.score = nn.Conv2d(width, 1, 1)
        self.classifier = nn.Linear(width, num_labels)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[B, T, C, H, W]`` -> (heat logits ``[B, H, W]``, centre ``[B, 2]``, class logits ``[B, L]``)."""
        clip = pixel_values[:, -self.frames :]
        batch, frames, channels, height, width = clip.shape
        features = self.trunk(clip.reshape(batch, frames * channels, height, width))
        heat = self.score(features)[:, 0]
        weights = heat.reshape(batch, -1).softmax(dim=-1)
        pooled = torch.einsum("bn,bcn->bc", weights, features.reshape(batch, features.shape[1], -1))
        if self.recipe.readout == "peak":
            centre = peak_readout_with_spread(heat, self.recipe.peak_radius)[0]
        else:
            centre = soft_argmax_2d(heat)
        return heat, centre, self.classifier(pooled)


def _tracking_loss(model: SmallCNN, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The VideoMAE tracker's loss (`HeadRecipe`)."""
    heat, centre, _ = model(batch["pixel_values"])
    recipe, size = model.recipe, heat.shape[-1]
    likelihood = centre_loss(
        heat, batch["labels"], subpixel=True, sigma=recipe.target_sigma, label_noise=recipe.label_noise
    )
    if recipe.tracking_loss == "heatmap":
        return likelihood
    return F.mse_loss(centre / (size / 2), batch["labels"] / (size / 2)) + recipe.centre_loss_weight * likelihood


def _detection_loss(
    model: SmallCNN, batch: dict[str, torch.Tensor], class_weights: torch.Tensor
) -> torch.Tensor:
    heat, _, logits = model(batch["pixel_values"])
    return F.cross_entropy(logits, batch["labels"], weight=class_weights) + centre_loss(
        heat, batch["centre"], sigma=model.recipe.target_sigma
    )


@torch.inference_mode()
def cnn_predict(model: SmallCNN, dataset: Dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(centres ``[N, 2]`` tile px, Medicane probability ``[N]``) of every clip, in order."""
    model.eval()
    centres, probability = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        _, centre, logits = model(batch["pixel_values"])
        centres.append(centre)
        probability.append(logits.softmax(dim=-1)[:, 1])
    model.train()
    return torch.cat(centres).numpy().astype(np.float64), torch.cat(probability).numpy().astype(np.float64)


def train_small_cnn(
    stage: str,
    train: Dataset,
    validation: Dataset,
    validation_targets: np.ndarray,
    seconds: float,
    seed: int = 0,
    batch_size: int = 16,
    eval_every: int = 100,
    class_weights: torch.Tensor | None = None,
    recipe: HeadRecipe | None = None,
) -> tuple[SmallCNN, dict[str, float]]:
    """Train for `seconds` of wall time; keep the state with the best validation figure (tracking: median px,
    lower is better; detection: ROC AUC). `validation_targets`: ``[N, 2]`` centres or ``[N]`` labels; `recipe`:
    the VideoMAE heads' read-out and losses (default: soft arg-max, MSE + 0.1 x centre cross-entropy)."""
    torch.manual_seed(seed)
    model = SmallCNN(recipe=recipe)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True, generator=generator)
    best_state, best_value, steps, started = None, -float("inf"), 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in loader:
            loss = (
                _tracking_loss(model, batch)
                if stage == "tracking"
                else _detection_loss(
                    model, batch, class_weights if class_weights is not None else torch.ones(2)
                )
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            out_of_time = time.perf_counter() - started >= seconds
            if steps % eval_every == 0 or out_of_time:
                centres, probability = cnn_predict(model, validation)
                if stage == "tracking":
                    value = -float(np.median(np.hypot(*(centres - validation_targets).T)))
                else:
                    value = float(detection_metrics(validation_targets, scores=probability)["roc_auc"])
                if value > best_value:
                    best_value, best_state = value, copy.deepcopy(model.state_dict())
            if out_of_time:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, {
        "steps": steps,
        "seconds": time.perf_counter() - started,
        "best_validation": abs(best_value),
    }
