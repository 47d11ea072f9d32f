"""`MedicaneVideoMAEConfig`: a VideoMAE v2 backbone plus masking, heads and the data contract.

The config saved beside every model (``config.json``) records what the model expects, so that inference can
refuse input that does not match and say what differs:

* clip shape: ``num_frames`` frames of ``image_size`` x ``image_size`` px (the tile size) with ``num_channels``
  channels, one frame every ``frame_interval_minutes``;
* input normalisation: ``image_mean`` / ``image_std`` per channel, in 0..1 units. The defaults (0.5 / 0.25 for
  every channel) are neutral placeholders that map 0..1 onto -2..2; the trainer overwrites them with the
  statistics of the training split (the dataset's ``normalization.json``). ImageNet values are never used;
* the grid and tile layout the model was trained on (``grid``: ``SeviriGrid.to_dict()``, ``tiles``:
  ``{"tile_size", "stride_x", "stride_y"}``), and class names via ``id2label``.

Backbone sizes come from ``MedicaneVideoMAEConfig.from_preset(name, **overrides)`` (see ``PRESETS``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from transformers import VideoMAEConfig

DEFAULT_ID2LABEL: dict[int, str] = {0: "background", 1: "medicane"}
THREE_CLASS_ID2LABEL: dict[int, str] = {0: "background", 1: "medicane", 2: "neighbouring"}

ENCODER_MASK_TYPES = ("tube",)
DECODER_MASK_TYPES = ("running_cell", "none")
TRACKING_LOSSES = ("mse", "huber", "heatmap")
TRACKING_HEADS = ("pooled", "token_argmax", "heatmap")
TRACKING_READOUTS = ("soft_argmax", "peak")
PATCH_EMBEDDINGS = ("linear", "conv")
DETECTION_POOLINGS = ("mean", "max", "attention", "heatmap")
DETECTION_THRESHOLD_RULES = {"balanced_accuracy": "balanced accuracy", "hss": "the Heidke skill score"}
"""The validation scores a detection threshold may maximise (`medicane_hf.evaluation.choose_threshold`), in words."""

# VideoMAE v2 backbones (DOMAIN.md section 5). Decoder width 512, depth 4, 8 heads for the real sizes; the
# `tiny` preset matches the embedded demo dataset (64 px tiles, 128 tokens) and keeps tests fast.
_V2_DECODER: dict[str, Any] = {
    "decoder_hidden_size": 512,
    "decoder_num_hidden_layers": 4,
    "decoder_num_attention_heads": 8,
    "decoder_intermediate_size": 2048,
}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "image_size": 64,
        "patch_size": 16,
        "tubelet_size": 2,
        "num_frames": 16,
        "hidden_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 384,
        "decoder_hidden_size": 64,
        "decoder_num_hidden_layers": 2,
        "decoder_num_attention_heads": 4,
        "decoder_intermediate_size": 256,
    },
    "small": {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 6,
        "intermediate_size": 1536,
        **_V2_DECODER,
    },
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        **_V2_DECODER,
    },
    "giant": {
        "patch_size": 14,
        "hidden_size": 1408,
        "num_hidden_layers": 40,
        "num_attention_heads": 16,
        "intermediate_size": 6144,
        **_V2_DECODER,
    },
}


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """An int or a (height, width) pair as a (height, width) tuple."""
    if isinstance(value, int):
        return value, value
    height, width = value
    return int(height), int(width)


class MedicaneVideoMAEConfig(VideoMAEConfig):
    r"""
    Configuration of the Medicane VideoMAE v2 family (encoder, MAE pre-training, detection, tracking).

    Extends `transformers.VideoMAEConfig` (which supplies the backbone fields: `image_size`, `patch_size`,
    `num_channels`, `num_frames`, `tubelet_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    `intermediate_size`, `qv_bias`, `decoder_*`, `norm_pix_loss`, ...). VideoMAE v2 layout: separate `q_bias` /
    `v_bias` (`qv_bias=True`), no CLS token, fixed sin-cos position table, mean pooling + `fc_norm` for heads,
    LayerNorm eps 1e-6.

    encoder_mask_type (`str`, defaults to `"tube"`):
        Encoder masking for pre-training: one spatial mask repeated over time.
    encoder_mask_ratio (`float`, defaults to 0.75):
        Fraction of the spatial positions hidden from the encoder (VideoMAE uses 0.75 or 0.9).
    decoder_mask_type (`str`, defaults to `"running_cell"`):
        `"running_cell"` (VideoMAE v2 dual masking: the decoder reconstructs half of the tokens) or `"none"`.
    decoder_mask_ratio (`float`, defaults to 0.5):
        Fraction of the positions the decoder does *not* reconstruct (0.25, 0.5 or 0.75 for the running cell);
        0 reconstructs every masked token, as VideoMAE v1 does.
    image_mean, image_std (`list[float]`, one value per channel, 0..1 units):
        Input normalisation: `pixel_values = (pixels / 255 - image_mean) / image_std`. Defaults 0.5 / 0.25 are
        neutral placeholders; the trainer writes the dataset's `normalization.json` values here.
    frame_interval_minutes (`int`, defaults to 5):
        Minutes between consecutive frames of a clip (SEVIRI rapid scan).
    grid (`dict`, *optional*):
        The pixel grid of the training data, `SeviriGrid.to_dict()`.
    tiles (`dict`, *optional*):
        The tile layout of the training data, `{"tile_size", "stride_x", "stride_y"}`.
    label_smoothing (`float`, defaults to 0.0):
        Label smoothing of the detection cross-entropy (the old recipe used 0.1).
    class_weights (`list[float]`, *optional*):
        Per-class weights of the detection cross-entropy, one per label.
    tracking_loss (`str`, defaults to `"mse"`):
        `"mse"` or `"huber"`, computed in normalised target space (see `tracking_target_centre`), plus the heat
        map's centre loss weighted by `tracking_centre_loss_weight`; or `"heatmap"` (`tracking_head="heatmap"`
        only): the heat map's centre loss alone, the negative log-likelihood of the labelled centre under the
        map's pixel softmax (target blurred by `heatmap_target_sigma`). A coordinate loss on the soft arg-max
        rewards a map that hedges between candidates (its mean lands between them, near the tile centre, when
        the eye is hidden or the label is noisy: 239-369 km on `realistic` validation in two runs); the
        likelihood rewards mass on the right pixel and lets the `"peak"` read-out pick the most likely candidate.
    tracking_huber_delta (`float`, defaults to 0.1):
        Huber threshold in normalised units (0.1 = 11.2 px on a 224 px tile).
    tracking_head (`str`, defaults to `"pooled"`):
        `"pooled"`: mean pooling + `fc_norm` + `regressor` Linear(hidden, 2) (the old system's head).
        `"token_argmax"`: a soft arg-max over the last frame's tokens: each token scores how likely it holds
        the centre (`heatmap` Linear(hidden, 1)) and proposes an offset from its patch centre (`regressor`);
        the prediction is the score-weighted mean. It keeps location, which mean pooling averages away.
        `"heatmap"`: a dense heat map at the tile's full resolution: the last frame's tokens (after `fc_norm`,
        projected to `heatmap_channels` and upsampled) are added to features of the clip's last
        `heatmap_frames` frames computed at full resolution (`heatmap_fine`), two convolutions score every
        pixel, and the centre is the soft arg-max (expected pixel position) of the map. It keeps position
        below a token: the tokens say which storm, the full-resolution features say which pixel.
    detection_pooling (`str`, defaults to `"mean"`):
        How the detection head summarises the tokens before `fc_norm` and `classifier`: `"mean"` (VideoMAE v2's
        fine-tuning head, what converted checkpoints were trained with), `"max"` (per-feature maximum), or
        `"attention"` (a softmax-weighted mean whose per-token weights come from `pool_score` Linear(hidden, 1)).
        A Medicane covers a few patches of a tile: mean pooling dilutes it among the background tokens,
        attention lets the head look at the storm's tokens. `"heatmap"`: the pixels of the last `heatmap_frames`
        frames at full resolution, as the `"heatmap"` tracking head sees them, pooled by the softmax of a
        per-pixel score (`heatmap_head`, the same module and key names as the tracking head, so a tracker's weights
        carry over; `classifier` then takes `heatmap_channels` features).
    detection_position (`bool`, defaults to `False`):
        With `detection_pooling="heatmap"` only: the detector also sees where on the grid the storm is. Its
        forward then needs `tile_offset` float `[B, 2]`, the grid pixel (x0, y0) of the tile's top-left corner;
        the heat map's soft arg-max (detached: position does not shape the map) plus `tile_offset`, divided by
        the `grid`'s (width, height), is encoded by fixed Fourier features (sin / cos of 2 pi k p, k = 1, 2, 4,
        8, per axis) and `position_embedding` Linear(16, heatmap_channels), whose output is added to the pooled
        features before `classifier`. Zero-initialised, so training starts as the pixel-only head. A Medicane is
        over sea by definition, and a look-alike vortex with an eye over land cannot be told from one by its
        pixels: on the `realistic` basin a pixel-only detector that flags every eye has FAR 0.433, one that
        also knows land from sea 0.215. Needs `grid` at forward time.
    patch_embedding (`str`, defaults to `"linear"`):
        How a tubelet becomes a token. `"linear"`: VideoMAE's Conv3d with kernel = stride = (tubelet, patch,
        patch), i.e. one linear map of the raw pixels (what VideoMAE v1/v2 checkpoints hold). `"conv"`: a small
        convolutional stem run on each patch of each tubelet (its frames stacked as channels; a 3x3 convolution
        at full resolution, then log2(patch) 3x3 convolutions of stride 2 down to one vector per patch), mapped
        to the hidden size by `projection`. A Medicane's eye is 2-3 px wide on the embedded basin
        and some 10 px on real tiles: one linear map of a 16 x 16 patch does not pick it out of textured cloud,
        stacked convolutions do ("early convolutions help transformers see better", Xiao et al. 2021). The stem
        stays inside each patch, so masked pre-training still embeds the visible tokens only and nothing leaks
        from a masked patch. Needs a power-of-two patch size.
    stem_width (`int`, defaults to 8):
        Channels of the conv stem's first (full-resolution) layer; each stride-2 layer doubles them, up to
        `hidden_size`.
    heatmap_channels (`int`, defaults to 16):
        Width of the `"heatmap"` tracking head.
    detection_centre_loss_weight (`float`, defaults to 1.0):
        With `detection_pooling="heatmap"`: weight of the heat map's centre loss (cross-entropy of the pixel
        softmax against the storm centre of Medicane train clips) added to the classification loss.
    tracking_centre_loss_weight (`float`, defaults to 0.1):
        With `tracking_head="heatmap"`: weight of the heat map's sub-pixel centre loss (cross-entropy against the
        centre's four neighbouring pixels, bilinear weights) added to the soft arg-max's MSE. The MSE alone gives
        a flat map little gradient: 2 of 5 seeds stayed at 8-12 px after 600 steps while the others reached 0.1-0.3
        px (benchmarks/RESULTS.md). 0 turns it off.
    heatmap_target_sigma (`float`, defaults to 0.0):
        The target of either heat map's centre loss (tracking and `detection_pooling="heatmap"`): 0 is the exact
        centre (tracking: its four neighbouring pixels with bilinear weights, sub-pixel; detection: the pixel
        holding it); > 0 an isotropic Gaussian of this sigma (px) around the labelled centre, the label's own
        uncertainty (real tracks sit tens of km off the visible centre).
    heatmap_label_noise (`float`, defaults to 0.0):
        The tracking labels' own error with respect to the centre the frames show, as a Gaussian sigma per axis
        (px of the tile; e.g. ERA5 composite tracks sit tens of km off the satellite-visible centre). > 0: the
        tracking heat map's likelihood is taken after blurring its softmax by this error (forward correction for
        label noise), so the map is fitted to the visible centre and the blur to the labels' scatter; 0 fits the
        map to the labels themselves. Tracking only (the detector's centre term is a hint, not a read-out).
    tracking_readout (`str`, defaults to `"soft_argmax"`):
        How the `"heatmap"` tracking head turns its map into one centre: `"soft_argmax"`, the expected position
        under the whole map's softmax; `"peak"`, the expected position within `tracking_peak_radius` px of the
        map's most likely pixel (the mode, refined to sub-pixel: a second candidate elsewhere does not pull the
        centre towards it). The spread is the whole map's, about that centre, in both cases.
    tracking_peak_radius (`float`, defaults to 3.0):
        Half-width (px) of the square window of the `"peak"` read-out.
    heatmap_frames (`int`, defaults to 2):
        How many of the clip's last frames the `"heatmap"` head reads at full resolution (2 show the motion).
    detection_temperature (`float`, defaults to 1.0):
        Calibration of the detection probabilities: ``softmax(logits / detection_temperature)``. Set at the end of
        a training run to the temperature that minimises the validation negative log-likelihood.
    detection_threshold (`float` or `None`, defaults to `None`):
        The calibrated Medicane probability at or above which a clip is called a Medicane, chosen at the end of a
        training run by `detection_threshold_rule` on validation; `None`: the arg-max class.
    detection_threshold_rule (`str`, defaults to `"balanced_accuracy"`):
        The validation score that `detection_threshold` maximises: `"balanced_accuracy"` (Youden's J, the Peirce
        skill score; models saved before the rule existed were calibrated so) or `"hss"` (the Heidke skill score:
        for a rare event, fewer false alarms for a few more misses; `DETECTION_THRESHOLD_RULES`).
    tracking_spread_scale (`float`, defaults to 1.0):
        Factor from the heat map's spread (the standard deviation of the soft arg-max weights, px) to the
        returned `centre_spread`: the isotropic Gaussian sigma of the centre, fitted on validation at the end of
        a training run (maximum likelihood).
    tracking_radius_factors (`dict[str, float]` or `None`, defaults to `None`):
        Per share of true centres (keys ``"0.5"``, ``"0.9"``), the factor from `centre_spread` to the radius that
        holds that share, chosen at the end of a training run on validation (split conformal,
        `medicane_hf.evaluation.calibration.fit_radius_factors`); `None`: the Gaussian radius of the spread.
    drop_path_rate (`float`, defaults to 0.0):
        Stochastic depth of the encoder, rising linearly from 0 at the first layer to this value at the last
        (VideoMAE v2 fine-tuning uses 0.1; keep 0 for pre-training).
    """

    model_type = "medicane_videomae"

    encoder_mask_type: str = "tube"
    encoder_mask_ratio: float = 0.75
    decoder_mask_type: str = "running_cell"
    decoder_mask_ratio: float = 0.5
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    frame_interval_minutes: int = 5
    grid: dict | None = None
    tiles: dict | None = None
    label_smoothing: float = 0.0
    class_weights: list[float] | None = None
    tracking_loss: str = "mse"
    tracking_huber_delta: float = 0.1
    tracking_head: str = "pooled"
    detection_pooling: str = "mean"
    detection_position: bool = False
    drop_path_rate: float = 0.0
    patch_embedding: str = "linear"
    stem_width: int = 8
    heatmap_channels: int = 16
    heatmap_frames: int = 2
    detection_centre_loss_weight: float = 1.0
    tracking_centre_loss_weight: float = 0.1
    heatmap_target_sigma: float = 0.0
    heatmap_label_noise: float = 0.0
    tracking_readout: str = "soft_argmax"
    tracking_peak_radius: float = 3.0
    detection_temperature: float = 1.0
    detection_threshold: float | None = None
    detection_threshold_rule: str = "balanced_accuracy"
    tracking_spread_scale: float = 1.0
    tracking_radius_factors: dict[str, float] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        num_labels = kwargs.pop("num_labels", None)
        if self.id2label is None:
            self.id2label = dict(THREE_CLASS_ID2LABEL if num_labels == 3 else DEFAULT_ID2LABEL)
            if num_labels is not None and num_labels not in (2, 3):
                self.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        if self.label2id is None:
            self.label2id = {name: int(i) for i, name in dict(self.id2label).items()}
        super().__post_init__(**kwargs)
        channels = self.num_channels
        self.image_mean = [0.5] * channels if self.image_mean is None else [float(v) for v in self.image_mean]
        self.image_std = [0.25] * channels if self.image_std is None else [float(v) for v in self.image_std]
        if self.class_weights is not None:
            self.class_weights = [float(v) for v in self.class_weights]
        self._check_settings()

    # ------------------------------------------------------------------ presets

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MedicaneVideoMAEConfig:
        """A config for the backbone preset `name` ("tiny", "small", "base", "giant"), then `overrides`.

        Every preset uses the VideoMAE v2 layout (qv_bias, mean pooling, LayerNorm eps 1e-6, 16 frames of
        224 px unless the preset says otherwise).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
        settings: dict[str, Any] = {"layer_norm_eps": 1e-6, "qv_bias": True, "use_mean_pooling": True}
        settings.update(PRESETS[name])
        settings.update(overrides)
        return cls(**settings)

    # ------------------------------------------------------------------ derived sizes

    @property
    def image_height_width(self) -> tuple[int, int]:
        """(height, width) of a tile in pixels."""
        return _pair(self.image_size)

    @property
    def patch_height_width(self) -> tuple[int, int]:
        """(height, width) of a patch in pixels."""
        return _pair(self.patch_size)

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """(time, rows, columns) of the token grid: (num_frames / tubelet, H / patch, W / patch)."""
        height, width = self.image_height_width
        patch_h, patch_w = self.patch_height_width
        return self.num_frames // self.tubelet_size, height // patch_h, width // patch_w

    @property
    def num_tokens(self) -> int:
        """Sequence length of a full clip: (T / tubelet) * (H / patch) * (W / patch)."""
        return math.prod(self.token_grid)

    @property
    def patch_dim(self) -> int:
        """Values in one patchified token: tubelet * patch_h * patch_w * channels."""
        patch_h, patch_w = self.patch_height_width
        return self.tubelet_size * patch_h * patch_w * self.num_channels

    @property
    def stem_channels(self) -> list[int]:
        """Output channels of each conv-stem layer: the full-resolution one, then one per halving of the patch.

        ``[stem_width, 2 stem_width, 4 stem_width, ...]`` capped at ``hidden_size``; ``1 + log2(patch)`` entries.
        """
        halvings = int(math.log2(max(self.patch_height_width)))
        return [min(self.stem_width * 2**i, self.hidden_size) for i in range(halvings + 1)]

    # ------------------------------------------------------------------ data contract

    def describe_data_contract(self) -> str:
        """One sentence saying what input the model expects, e.g. for an error message or a model card."""
        height, width = self.image_height_width
        return (
            f"{self.num_frames} frames ({self.frame_interval_minutes} min apart) of {height}x{width} px with "
            f"{self.num_channels} channels, pixel_values float [batch, {self.num_frames}, {self.num_channels}, "
            f"{height}, {width}] normalised with image_mean={self.image_mean}, image_std={self.image_std}"
        )

    def validate_clip_shape(self, shape: Sequence[int], *, allow_other_size: bool = False) -> None:
        """Raise a ValueError naming what differs when `shape` is not `[batch, T, C, H, W]` as the model expects.

        `allow_other_size` accepts another tile size (a multiple of the patch size), for position-table
        interpolation; frames and channels must still match.
        """
        shape = tuple(int(s) for s in shape)
        height, width = self.image_height_width
        expected = (
            f"{self.num_frames} frames of {height}x{width} px with {self.num_channels} channels "
            f"(pixel_values [batch, {self.num_frames}, {self.num_channels}, {height}, {width}])"
        )
        if len(shape) != 5:
            raise ValueError(f"model expects {expected}, got a tensor of shape {list(shape)}")
        _, frames, channels, got_h, got_w = shape
        problems = []
        if frames != self.num_frames:
            problems.append(f"{frames} frames instead of {self.num_frames}")
        if channels != self.num_channels:
            problems.append(f"{channels} channels instead of {self.num_channels}")
        patch_h, patch_w = self.patch_height_width
        if allow_other_size:
            if got_h % patch_h or got_w % patch_w:
                problems.append(f"{got_h}x{got_w} px, not a multiple of the {patch_h}x{patch_w} px patch")
        elif (got_h, got_w) != (height, width):
            problems.append(f"{got_h}x{got_w} px instead of {height}x{width} px")
        if problems:
            raise ValueError(f"model expects {expected}, got {', '.join(problems)} (shape {list(shape)})")

    def check_input(self, pixel_values: Any) -> None:
        """`validate_clip_shape(pixel_values.shape)`: the cheap check every forward runs."""
        self.validate_clip_shape(pixel_values.shape)

    @property
    def grid_width_height(self) -> tuple[int, int]:
        """(width, height) in pixels of the training grid (`grid`); a ValueError when the config has none."""
        if self.grid is None:
            raise ValueError(
                "detection_position=True places the storm on the grid, but the config records no grid: set "
                "config.grid = SeviriGrid.to_dict() of the training data (the trainer writes it)"
            )
        return int(self.grid["width"]), int(self.grid["height"])

    # ------------------------------------------------------------------ tracking targets

    @property
    def tracking_target_centre(self) -> tuple[float, float]:
        """(x, y) of the tile centre in tile pixels, (W - 1) / 2 and (H - 1) / 2: the normalised target's zero."""
        height, width = self.image_height_width
        return (width - 1) / 2.0, (height - 1) / 2.0

    @property
    def tracking_target_scale(self) -> tuple[float, float]:
        """(x, y) pixels per normalised unit, W / 2 and H / 2: the tile edges map to about -1 and +1."""
        height, width = self.image_height_width
        return width / 2.0, height / 2.0

    # ------------------------------------------------------------------ validation

    def _check_settings(self) -> None:
        """Fail at construction on settings that would only break later, naming the key."""
        if self.encoder_mask_type not in ENCODER_MASK_TYPES:
            raise ValueError(
                f"encoder_mask_type={self.encoder_mask_type!r}: choose one of {ENCODER_MASK_TYPES}"
            )
        if self.decoder_mask_type not in DECODER_MASK_TYPES:
            raise ValueError(
                f"decoder_mask_type={self.decoder_mask_type!r}: choose one of {DECODER_MASK_TYPES}"
            )
        if not 0.0 <= self.encoder_mask_ratio < 1.0:
            raise ValueError(f"encoder_mask_ratio={self.encoder_mask_ratio} must be in [0, 1)")
        if self.decoder_mask_type == "running_cell" and self.decoder_mask_ratio not in (0.0, 0.25, 0.5, 0.75):
            raise ValueError(
                f"decoder_mask_ratio={self.decoder_mask_ratio}: a running cell drops 0.25, 0.5 or 0.75 of each "
                "2x2 cell (or 0 to reconstruct every masked token)"
            )
        if self.tracking_loss not in TRACKING_LOSSES:
            raise ValueError(f"tracking_loss={self.tracking_loss!r}: choose one of {TRACKING_LOSSES}")
        if self.tracking_head not in TRACKING_HEADS:
            raise ValueError(f"tracking_head={self.tracking_head!r}: choose one of {TRACKING_HEADS}")
        if self.tracking_loss == "heatmap" and self.tracking_head != "heatmap":
            raise ValueError(
                f"tracking_loss='heatmap' is the heat map's likelihood: it needs tracking_head='heatmap', got "
                f"{self.tracking_head!r}"
            )
        if self.tracking_readout not in TRACKING_READOUTS:
            raise ValueError(f"tracking_readout={self.tracking_readout!r}: choose one of {TRACKING_READOUTS}")
        if not (
            self.heatmap_target_sigma >= 0 and self.tracking_peak_radius >= 0 and self.heatmap_label_noise >= 0
        ):
            raise ValueError(
                f"heatmap_target_sigma={self.heatmap_target_sigma}, tracking_peak_radius="
                f"{self.tracking_peak_radius} and heatmap_label_noise={self.heatmap_label_noise} must be >= 0 (px)"
            )
        if self.detection_pooling not in DETECTION_POOLINGS:
            raise ValueError(
                f"detection_pooling={self.detection_pooling!r}: choose one of {DETECTION_POOLINGS}"
            )
        if self.detection_position and self.detection_pooling != "heatmap":
            raise ValueError(
                f"detection_position=True reads the heat map's centre: it needs detection_pooling='heatmap', got "
                f"{self.detection_pooling!r}"
            )
        if self.patch_embedding not in PATCH_EMBEDDINGS:
            raise ValueError(f"patch_embedding={self.patch_embedding!r}: choose one of {PATCH_EMBEDDINGS}")
        if self.patch_embedding == "conv":
            patch_h, patch_w = self.patch_height_width
            for side in self.patch_height_width:
                if side < 2 or side & (side - 1) or patch_h != patch_w:
                    raise ValueError(
                        f"patch_embedding='conv' halves the patch down to one pixel: patch_size={self.patch_size} "
                        "must be square and a power of two"
                    )
        if not 1 <= self.heatmap_frames <= self.num_frames:
            raise ValueError(
                f"heatmap_frames={self.heatmap_frames} must be in 1..num_frames ({self.num_frames})"
            )
        if not self.detection_temperature > 0 or not self.tracking_spread_scale > 0:
            raise ValueError(
                f"detection_temperature={self.detection_temperature} and tracking_spread_scale="
                f"{self.tracking_spread_scale} must be > 0"
            )
        for share, factor in (self.tracking_radius_factors or {}).items():
            if not (0.0 < float(share) < 1.0 and float(factor) > 0.0):
                raise ValueError(
                    f"tracking_radius_factors[{share!r}]={factor}: a share in (0, 1) needs a factor > 0"
                )
        if self.detection_threshold is not None and not 0.0 <= self.detection_threshold <= 1.0:
            raise ValueError(
                f"detection_threshold={self.detection_threshold} must be a probability in [0, 1] or None"
            )
        if self.detection_threshold_rule not in DETECTION_THRESHOLD_RULES:
            raise ValueError(
                f"detection_threshold_rule={self.detection_threshold_rule!r}: choose one of "
                f"{tuple(DETECTION_THRESHOLD_RULES)}"
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate={self.drop_path_rate} must be in [0, 1)")
        for key in ("image_mean", "image_std"):
            values = getattr(self, key)
            if len(values) != self.num_channels:
                raise ValueError(f"{key} has {len(values)} values but num_channels={self.num_channels}")
        if any(v <= 0 for v in self.image_std):
            raise ValueError(f"image_std={self.image_std} must be positive")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values but the model has {self.num_labels} labels "
                f"({self.id2label})"
            )
        height, width = self.image_height_width
        patch_h, patch_w = self.patch_height_width
        if height % patch_h or width % patch_w:
            raise ValueError(
                f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}"
            )
        if self.num_frames % self.tubelet_size:
            raise ValueError(
                f"num_frames={self.num_frames} is not a multiple of tubelet_size={self.tubelet_size}"
            )


# save_pretrained copies this file beside config.json and names it in the auto_map (loading without this package);
# with the package installed, `import medicane_hf` registers the class with AutoConfig (medicane_hf._auto).
MedicaneVideoMAEConfig.register_for_auto_class()

__all__ = ["DEFAULT_ID2LABEL", "PRESETS", "THREE_CLASS_ID2LABEL", "MedicaneVideoMAEConfig"]
