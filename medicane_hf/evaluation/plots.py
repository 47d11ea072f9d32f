"""Figures for evaluation reports: confusion matrix, precision-recall curve, training
curves, MAE reconstructions, tracking error distribution, tracks on the grid.

Every function draws one figure with matplotlib's Agg canvas (no pyplot, so no
global state, no display and no backend switch for the caller), writes a PNG
to ``path`` (parent folders are created) and returns the path. Inputs are
checked before anything is drawn, and bad inputs raise ``ValueError`` (or
``KeyError`` for a missing column) that names the argument, column or line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import colormaps, patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.evaluation.detection import _cyclone_probability, _to_numpy

__all__ = [
    "plot_confusion_matrix",
    "plot_pr_curve",
    "plot_reconstructions",
    "plot_tracking_errors",
    "plot_tracks_on_map",
    "plot_training_curves",
    "read_jsonl",
]

PathLike = str | Path
DPI = 110
# Keys of a Trainer log that are bookkeeping, not curves worth a panel.
_TIMING_SUFFIXES = ("_runtime", "_per_second")
_SKIPPED_KEYS = {"step", "global_step", "epoch", "total_flos"}
_PREDICTED_STYLE = {"color": "black", "marker": "x", "linestyle": "--"}


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png")
    return out


# ---- detection ----------------------------------------------------------------------------


def plot_confusion_matrix(
    cm: npt.ArrayLike, class_names: Sequence[str], path: PathLike, normalize: bool = False
) -> Path:
    """Confusion matrix as a heat map with the count in every cell.

    Args:
        cm: [K, K] counts, rows = true class, columns = predicted class.
        class_names: K names.
        path: output PNG.
        normalize: colour and annotate each row as a fraction of its true class
            (per-class recall on the diagonal); the count is still shown.
    """
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"cm must be a square [K, K] matrix, got shape {counts.shape}")
    if len(class_names) != counts.shape[0]:
        raise ValueError(f"class_names has {len(class_names)} names for a {counts.shape[0]}-class matrix")
    if np.any(counts < 0):
        raise ValueError("cm holds negative counts")
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown = counts / support if normalize else counts.astype(np.float64)

    k = counts.shape[0]
    fig = _new_figure(1.6 + 1.3 * k, 1.2 + 1.2 * k)
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, np.nanmax(shown)))
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalize else "clips")
    threshold = (1 if normalize else np.nanmax(shown)) / 2
    for i in range(k):
        for j in range(k):
            text = f"{counts[i, j]:,}"
            if normalize:
                text += "\n–" if math.isnan(shown[i, j]) else f"\n{shown[i, j]:.1%}"
            colour = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(k), labels=class_names)
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(counts.sum()):,} clips)")
    return _save(fig, path)


def plot_pr_curve(
    labels: npt.ArrayLike, scores: npt.ArrayLike, path: PathLike, *, positive_class: int = 1
) -> Path:
    """Precision-recall curve of the cyclone class, with its average precision and the no-skill line.

    Args:
        labels: [N] true class ids (cyclone = ``positive_class``, every other class is "rest").
        scores: [N] probability of the cyclone class, or [N, C] logits (softmax).
        path: output PNG.
    """
    y_true = np.asarray(_to_numpy(labels, "labels"))
    if y_true.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {y_true.shape}")
    score_shape = np.shape(_to_numpy(scores, "scores"))
    num_classes = score_shape[1] if len(score_shape) == 2 else max(2, positive_class + 1)
    probability = _cyclone_probability(scores, y_true.shape[0], num_classes, positive_class)
    is_cyclone = y_true == positive_class
    if not is_cyclone.any():
        raise ValueError(
            f"labels hold no clip of the cyclone class {positive_class}: no precision-recall curve"
        )

    precision, recall, thresholds = precision_recall_curve(is_cyclone, probability)
    ap = average_precision_score(is_cyclone, probability)
    prevalence = is_cyclone.mean()

    fig = _new_figure(6, 5)
    ax = fig.subplots()
    ax.plot(recall, precision, drawstyle="steps-post", color="tab:blue", label=f"AP = {ap:.3f}")
    ax.axhline(prevalence, color="grey", linestyle=":", label=f"no skill ({prevalence:.3f})")
    if thresholds.size and probability.min() <= 0.5 <= probability.max():
        # the operating point of a 0.5 probability threshold, where argmax sits for two classes
        i = int(np.searchsorted(thresholds, 0.5))
        ax.plot(recall[i], precision[i], "o", color="tab:red", label="threshold 0.5")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall (POD)")
    ax.set_ylabel("precision (1 - FAR)")
    ax.set_title(f"Precision-recall, {int(is_cyclone.sum()):,} cyclone of {is_cyclone.size:,} clips")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


# ---- training curves ----------------------------------------------------------------------


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """Records of a JSON-lines file (blank lines skipped); errors name the file and line."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {line_no}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}, line {line_no}: expected a JSON object, got {type(record).__name__}"
                )
            records.append(record)
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _family(key: str, values: Sequence[float]) -> str | None:
    """Panel of a logged series; None for bookkeeping keys (step, epoch, runtimes, throughput, flops)."""
    if key in _SKIPPED_KEYS or key.endswith(_TIMING_SUFFIXES):
        return None
    if "loss" in key:
        return "loss"
    if key in ("learning_rate", "lr") or key.endswith("learning_rate"):
        return "learning rate"
    if key.startswith(("eval_", "test_", "validation_")):
        finite = [v for v in values if math.isfinite(v)]
        # scores in 0..1 share a panel; errors in km / px and counts get their own scale
        return "eval scores" if finite and min(finite) >= 0 and max(finite) <= 1 else "eval (other units)"
    return "other"


def _series(records: Sequence[Mapping[str, Any]], source: str) -> dict[str, tuple[list[float], list[float]]]:
    """key -> (steps, values) of every numeric key; a record needs ``step`` (or ``global_step``)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, record in enumerate(records, start=1):
        step = record.get("step", record.get("global_step"))
        if not _is_number(step):
            raise ValueError(f"{source}, record {i}: no numeric 'step' (keys: {sorted(record)})")
        for key, value in record.items():
            if _is_number(value) and key not in ("step", "global_step"):
                steps, values = series.setdefault(key, ([], []))
                steps.append(float(step))
                values.append(float(value))
    return series


def plot_training_curves(
    jsonl_path_or_records: PathLike | Iterable[Mapping[str, Any]], path: PathLike
) -> Path:
    """Every numeric series of a training log against step, one panel per family.

    Panels: losses (any key with "loss"; log scale when they span more than a
    decade), learning rate, eval scores in 0..1 (``eval_*``), other eval values
    (km, px, counts), and other training series (e.g. ``grad_norm``). Bookkeeping
    keys (``epoch``, ``total_flos``, ``*_runtime``, ``*_per_second``) are not drawn.

    Args:
        jsonl_path_or_records: a JSON-lines file, one record per line, or the records
            themselves (e.g. ``trainer.state.log_history``); every record needs ``step``.
        path: output PNG.
    """
    if isinstance(jsonl_path_or_records, str | Path):
        source = str(jsonl_path_or_records)
        records = read_jsonl(jsonl_path_or_records)
    else:
        source = "records"
        records = list(jsonl_path_or_records)
    series = _series(records, source)
    panels: dict[str, list[str]] = {}
    for key, (_, values) in series.items():
        family = _family(key, values)
        if family is not None:
            panels.setdefault(family, []).append(key)
    if not panels:
        raise ValueError(f"{source}: no numeric series to plot besides step/epoch/timing keys")

    order = ["loss", "learning rate", "eval scores", "eval (other units)", "other"]
    names = [name for name in order if name in panels]
    fig = _new_figure(7, 2.6 * len(names))
    axes = np.atleast_1d(fig.subplots(len(names), 1, sharex=True))
    for ax, name in zip(axes, names):
        _draw_family(ax, name, panels[name], series)
    axes[-1].set_xlabel("step")
    fig.suptitle(f"Training log ({len(records)} records)")
    return _save(fig, path)


def _draw_family(
    ax: Axes, name: str, keys: list[str], series: dict[str, tuple[list[float], list[float]]]
) -> None:
    for key in sorted(keys):
        steps, values = series[key]
        marker = "o" if len(values) <= 30 else None
        ax.plot(steps, values, marker=marker, markersize=3, label=key)
    if name == "loss":
        positive = [v for key in keys for v in series[key][1] if v > 0 and math.isfinite(v)]
        if (
            positive
            and all(v > 0 for key in keys for v in series[key][1])
            and max(positive) > 10 * min(positive)
        ):
            ax.set_yscale("log")
    if name == "learning rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


# ---- reconstructions ----------------------------------------------------------------------


def _video_01(video: Any, name: str) -> npt.NDArray[np.float64]:
    """[N, T, C, H, W] video as float in 0..1 (uint8 divided by 255, floats clipped)."""
    arr = _to_numpy(video, name)
    if arr.ndim != 5:
        raise ValueError(f"{name} must be [N, T, C, H, W], got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 (0..255) or float (0..1), got dtype {arr.dtype}")
    return np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 1.0)


def _show_frame(ax: Axes, frame_chw: npt.NDArray[np.float64]) -> None:
    """Draw one [C, H, W] frame: RGB when C == 3, else its first channel in grey."""
    if frame_chw.shape[0] == 3:
        ax.imshow(np.transpose(frame_chw, (1, 2, 0)), interpolation="nearest")
    else:
        ax.imshow(frame_chw[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_reconstructions(
    original: npt.ArrayLike,
    reconstruction: npt.ArrayLike,
    mask_video: npt.ArrayLike | None,
    path: PathLike,
    frames: Sequence[int] | None = None,
    *,
    max_samples: int = 4,
) -> Path:
    """MAE reconstructions: for each sample, rows input / masked input / reconstruction.

    Args:
        original: [N, T, C, H, W] clips, uint8 0..255 or float 0..1 (not normalised).
        reconstruction: same shape, same units (floats are clipped to 0..1).
        mask_video: optional bool [N, T, H, W], True where the encoder did not see the
            pixel (drawn grey in the "masked" row); without it that row is left out.
        path: output PNG.
        frames: frame indices to show (columns); default (0, T // 2, T - 1).
        max_samples: at most this many samples (the first ones) are drawn.
    """
    orig = _video_01(original, "original")
    recon = _video_01(reconstruction, "reconstruction")
    if orig.shape != recon.shape:
        raise ValueError(f"reconstruction shape {recon.shape} differs from original shape {orig.shape}")
    n, t, _, h, w = orig.shape
    mask = None
    if mask_video is not None:
        mask = _to_numpy(mask_video, "mask_video").astype(bool)
        if mask.shape != (n, t, h, w):
            raise ValueError(f"mask_video must be [N, T, H, W] = {(n, t, h, w)}, got shape {mask.shape}")
    frames = list(frames) if frames is not None else sorted({0, t // 2, t - 1})
    bad = [f for f in frames if not -t <= f < t]
    if bad or not frames:
        raise ValueError(f"frames {frames} must be non-empty indices into T = {t} frames")
    if n == 0 or max_samples < 1:
        raise ValueError(f"nothing to draw: {n} samples, max_samples={max_samples}")

    n = min(n, max_samples)
    rows = ["input", "masked input", "reconstruction"] if mask is not None else ["input", "reconstruction"]
    fig = _new_figure(1.0 + 2.2 * len(frames), 2.2 * n * len(rows) * h / max(w, 1) + 0.6)
    axes = np.asarray(fig.subplots(n * len(rows), len(frames), squeeze=False))
    for i in range(n):
        for r, row_name in enumerate(rows):
            for c, f in enumerate(frames):
                if row_name == "input":
                    frame = orig[i, f]
                elif row_name == "reconstruction":
                    frame = recon[i, f]
                else:
                    frame = np.where(mask[i, f][None], 0.5, orig[i, f])
                ax = axes[i * len(rows) + r, c]
                _show_frame(ax, frame)
                if i == 0 and r == 0:
                    ax.set_title(f"frame {f % t}")
                if c == 0:
                    ax.set_ylabel(f"#{i} {row_name}", fontsize=8)
    return _save(fig, path)


# ---- tracking -----------------------------------------------------------------------------


def plot_tracking_errors(
    errors_df: pd.DataFrame, path: PathLike, *, column: str = "err_km", baseline_column: str | None = None
) -> Path:
    """Histogram and empirical CDF of centre errors, with mean, median and 90th percentile marked, and beside them
    the errors of a baseline (the constant guess) when the table has them.

    Args:
        errors_df: a table with the error column, e.g. from ``tracking_errors``.
        path: output PNG.
        column: ``err_km`` (default) or ``err_px``.
        baseline_column: the baseline's error column; default ``baseline_<column>`` when the table has it
            (`medicane_hf.tasks.tracking_metrics` adds it), else none.
    """
    if column not in errors_df:
        raise KeyError(f"errors_df has no column {column!r} (columns: {list(errors_df.columns)})")
    if baseline_column is None and f"baseline_{column}" in errors_df:
        baseline_column = f"baseline_{column}"
    values = np.asarray(errors_df[column], dtype=np.float64)
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        raise ValueError(f"errors_df[{column!r}] holds no finite error to plot")
    unit = "km" if column.endswith("km") else "px"
    marks = {"mean": finite.mean(), "median": np.median(finite), "p90": np.percentile(finite, 90)}
    colours = {"mean": "tab:red", "median": "tab:green", "p90": "tab:purple"}
    baseline = None
    if baseline_column is not None:
        base_values = np.asarray(errors_df[baseline_column], dtype=np.float64)
        baseline = np.sort(base_values[np.isfinite(base_values)])

    fig = _new_figure(11, 4)
    hist_ax, cdf_ax = fig.subplots(1, 2)
    top = max(finite.max(), baseline.max()) if baseline is not None and baseline.size else finite.max()
    bins = np.linspace(0.0, top, min(50, max(10, finite.size // 5)) + 1)
    hist_ax.hist(finite, bins=bins, color="tab:blue", alpha=0.8, label="model")
    hist_ax.set_xlabel(f"centre error ({unit})")
    hist_ax.set_ylabel("clips")
    cdf_ax.plot(
        finite,
        np.arange(1, finite.size + 1) / finite.size,
        drawstyle="steps-post",
        color="tab:blue",
        label="model",
    )
    title = f"Centre error, {finite.size} clips: median {marks['median']:.1f} {unit}"
    if baseline is not None and baseline.size:
        hist_ax.hist(baseline, bins=bins, color="0.5", alpha=0.45, label="constant guess")
        cdf_ax.plot(
            baseline, np.arange(1, baseline.size + 1) / baseline.size, drawstyle="steps-post", color="0.4",
            label=f"constant guess (median {np.median(baseline):.1f} {unit})",
        )  # fmt: skip
        title += f", constant guess {np.median(baseline):.1f} {unit}"
    cdf_ax.set_xlabel(f"centre error ({unit})")
    cdf_ax.set_ylabel("fraction of clips with error <= x")
    cdf_ax.set_ylim(0, 1.01)
    for ax in (hist_ax, cdf_ax):
        for name, value in marks.items():
            ax.axvline(value, color=colours[name], linestyle="--", label=f"{name} {value:.1f} {unit}")
        ax.grid(alpha=0.3)
    hist_ax.legend(loc="upper right")
    cdf_ax.legend(loc="lower right")
    left_out = values.size - finite.size
    note = f", {left_out} non-finite left out" if left_out else ""
    fig.suptitle(title + note)
    return _save(fig, path)


def _lonlat_columns(df: pd.DataFrame, name: str) -> tuple[str, str]:
    for lon, lat in (("lon", "lat"), ("pred_lon", "pred_lat")):
        if lon in df and lat in df:
            return lon, lat
    raise KeyError(f"{name} needs 'lon'/'lat' (or 'pred_lon'/'pred_lat') columns, has {list(df.columns)}")


def _groups(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(legend label, rows sorted by time) per storm; one group when there is no storm column."""
    key = "storm_id" if "storm_id" in df else ("name" if "name" in df else None)
    groups = [("", df)] if key is None else list(df.groupby(key, sort=True))
    out = []
    for storm, rows in groups:
        if "time" in rows:
            rows = rows.sort_values("time")
        label = str(storm)
        if "name" in rows and key == "storm_id":
            names = [str(v) for v in rows["name"].dropna().unique() if str(v).strip()]
            if names and names[0] != label:
                label = f"{names[0]} ({storm})"
        out.append((label, rows))
    return out


def _draw_graticule(ax: Axes, grid: SeviriGrid) -> None:
    """Lon/lat lines every 5 degrees, labelled at the image edge, so the map reads without a background."""
    border_x = np.r_[
        np.arange(grid.width),
        np.arange(grid.width),
        np.zeros(grid.height),
        np.full(grid.height, grid.width - 1),
    ]
    border_y = np.r_[
        np.zeros(grid.width),
        np.full(grid.width, grid.height - 1),
        np.arange(grid.height),
        np.arange(grid.height),
    ]
    lon_b, lat_b = grid.pixel_to_lonlat(border_x, border_y)
    lon_min, lon_max = np.nanmin(lon_b), np.nanmax(lon_b)
    lat_min, lat_max = np.nanmin(lat_b), np.nanmax(lat_b)
    span = max(lon_max - lon_min, lat_max - lat_min)
    step = 5.0 if span > 10 else (1.0 if span > 2 else 0.25)
    style = {"color": "white", "linewidth": 0.5, "alpha": 0.6, "zorder": 1}
    text_style = {
        "fontsize": 7,
        "color": "black",
        "clip_on": True,
        "path_effects": [patheffects.withStroke(linewidth=2, foreground="white")],
    }
    for lon in np.arange(math.ceil(lon_min / step) * step, lon_max + 1e-9, step):
        lats = np.linspace(lat_min, lat_max, 100)
        x, y = grid.lonlat_to_pixel(np.full_like(lats, lon), lats)
        ax.plot(x, y, **style)
        ok = np.isfinite(x) & np.isfinite(y)
        x_bottom = np.interp(grid.height - 1, y[ok][::-1], x[ok][::-1]) if ok.sum() > 1 else np.nan
        if np.isfinite(x_bottom):
            ax.text(
                x_bottom, grid.height - 1, _degrees(lon, "E", "W"), ha="center", va="bottom", **text_style
            )
    for lat in np.arange(math.ceil(lat_min / step) * step, lat_max + 1e-9, step):
        lons = np.linspace(lon_min, lon_max, 100)
        x, y = grid.lonlat_to_pixel(lons, np.full_like(lons, lat))
        ax.plot(x, y, **style)
        ok = np.isfinite(x) & np.isfinite(y)
        y_left = np.interp(0, x[ok], y[ok]) if ok.sum() > 1 else np.nan
        if (
            0.03 * grid.height < y_left < 0.95 * grid.height
        ):  # keep clear of the lon labels on the bottom edge
            ax.text(0, y_left, _degrees(lat, "N", "S"), ha="left", va="center", **text_style)


def _degrees(value: float, positive: str, negative: str) -> str:
    return f"{abs(value):g}°{positive if value >= 0 else negative}"


def _check_background(background: Any, grid: SeviriGrid) -> np.ndarray:
    image = _to_numpy(background, "background")
    if image.ndim not in (2, 3) or image.shape[:2] != (grid.height, grid.width):
        raise ValueError(
            f"background must be [H, W] or [H, W, C] with H x W = {grid.height} x {grid.width} (the grid), "
            f"got shape {image.shape}"
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(f"background must have 1, 3 or 4 channels, got {image.shape[2]}")
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def plot_tracks_on_map(
    tracks_df: pd.DataFrame,
    grid: SeviriGrid,
    path: PathLike,
    background: npt.ArrayLike | None = None,
    predicted: pd.DataFrame | None = None,
) -> Path:
    """Storm tracks in grid pixel coordinates, optionally over a frame and with predicted centres.

    Args:
        tracks_df: observed track points with ``lon``, ``lat`` (degrees) and, optionally,
            ``storm_id`` / ``name`` (one line and legend entry per storm) and ``time``
            (points joined in time order), e.g. from ``read_tracks``.
        grid: the pixel grid; lon/lat go through ``grid.lonlat_to_pixel``.
        path: output PNG.
        background: optional [H, W] or [H, W, C] frame (uint8 or float 0..1) of the grid's size.
        predicted: optional predicted centres with ``lon``/``lat`` or ``pred_lon``/``pred_lat``
            (the ``tracking_errors`` table), grouped like ``tracks_df``; drawn in black,
            dashed, with crosses.
    """
    lon_col, lat_col = _lonlat_columns(tracks_df, "tracks_df")
    pred_cols = _lonlat_columns(predicted, "predicted") if predicted is not None else None
    image = _check_background(background, grid) if background is not None else None

    fig = _new_figure(14, 14 * grid.height / grid.width + 1.2)
    ax = fig.subplots()
    extent = (-0.5, grid.width - 0.5, grid.height - 0.5, -0.5)
    if image is not None:
        ax.imshow(image, extent=extent, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    else:
        ax.set_facecolor("#c9d6df")
    _draw_graticule(ax, grid)

    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    groups = _groups(tracks_df)
    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    for i, (label, rows) in enumerate(groups):
        colour = cmap(i % cmap.N)
        x, y = grid.lonlat_to_pixel(rows[lon_col].to_numpy(float), rows[lat_col].to_numpy(float))
        ax.plot(
            x, y, "-o", color=colour, markersize=3, linewidth=1.5, label=label or "track", path_effects=halo
        )
    if predicted is not None:
        first = True
        for _, rows in _groups(predicted):
            x, y = grid.lonlat_to_pixel(
                rows[pred_cols[0]].to_numpy(float), rows[pred_cols[1]].to_numpy(float)
            )
            ax.plot(
                x,
                y,
                markersize=5,
                linewidth=1,
                label="predicted" if first else None,
                path_effects=halo,
                **_PREDICTED_STYLE,
            )
            first = False

    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xlabel("x (pixel, from the west edge)")
    ax.set_ylabel("y (pixel, from the top)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(
        f"{tracks_df.shape[0]} track points"
        + (f", {predicted.shape[0]} predicted" if predicted is not None else "")
    )
    return _save(fig, path)
