"""The ``realistic`` preset: a label off the drawn centre, eyes that come and go, look-alikes with an eye.

One 3-day realistic basin (seed 6: five Medicanes, one of them eyeless) checks the files; plans of
60 days (no frames, about 2 s) check the statistics where a few storms would be too few.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import medicane_hf.data.synthetic.default as default_module
from medicane_hf.data.geo import haversine_km
from medicane_hf.data.synthetic import (
    PRESETS,
    SyntheticBasin,
    ensure_synthetic_dataset,
    frame_path,
    generate_basin,
    grid_for,
    label_error_table,
    read_source_label_error,
    read_source_truth,
)
from medicane_hf.data.synthetic.config import SyntheticConfig, get_preset
from medicane_hf.data.synthetic.geography import get_geography
from medicane_hf.data.synthetic.measure import EyeColourStats, eye_colour_uniqueness
from medicane_hf.data.synthetic.plans import BasinPlan, make_plan
from medicane_hf.data.synthetic.rendering import FrameRenderer
from medicane_hf.data.tracks import read_tracks

REALISTIC = PRESETS["realistic"]


@pytest.fixture(scope="module")
def basin(tmp_path_factory: pytest.TempPathFactory) -> SyntheticBasin:
    out = tmp_path_factory.mktemp("realistic")
    return generate_basin(out, start="2023-10-01", days=3, seed=6, preset="realistic", progress=False)


@pytest.fixture(scope="module")
def long_plan() -> BasinPlan:
    """60 days of the realistic preset, planned only: 90 Medicanes, enough for tight statistics."""
    grid = grid_for(REALISTIC)
    return make_plan(
        np.random.default_rng(1), REALISTIC, grid, get_geography(), pd.Timestamp("2023-01-01"), 60
    )


def lag1_correlation(table: pd.DataFrame) -> float:
    """Pooled lag-1 autocorrelation of the east and north offsets within each storm (zero-mean process)."""
    num = den = 0.0
    for _, storm in table.sort_values("time").groupby("storm_id"):
        for column in ("offset_east_km", "offset_north_km"):
            v = storm[column].to_numpy()
            num += float((v[1:] * v[:-1]).sum())
            den += float((v[:-1] ** 2).sum())
    return num / den


def in_window_fill(plan: BasinPlan) -> np.ndarray:
    """Per in-window hour of every Medicane that has an eye: is the eye filled (fill >= 0.5)?"""
    parts = []
    for p in plan.medicanes:
        assert p.realism is not None
        if not p.realism.eyeless:
            inside = (p.hours >= p.window_start) & (p.hours <= p.window_end)
            parts.append(p.realism.eye_fill[inside] >= 0.5)
    return np.concatenate(parts)


# ---- label error ------------------------------------------------------------------------------


def test_tracks_file_is_off_the_drawn_centre_by_the_injected_error(basin: SyntheticBasin) -> None:
    tracks = read_tracks(basin.tracks_path)
    truth = basin.truth()
    drawn = truth[truth["kind"] == "medicane"].rename(columns={"object_id": "storm_id"})
    merged = tracks.merge(drawn, on=["storm_id", "time"], suffixes=("", "_drawn"), validate="1:1")
    assert len(merged) == len(tracks) > 100  # every hourly label has its drawn centre
    distance = haversine_km(merged["lon"], merged["lat"], merged["lon_drawn"], merged["lat_drawn"])
    errors = basin.label_error()
    assert basin.label_error_path == basin.out_dir / "label_error.csv"
    check = merged.merge(errors, on=["storm_id", "time"], validate="1:1")
    np.testing.assert_allclose(check["label_lon"], check["lon"], atol=1e-6)
    np.testing.assert_allclose(check["drawn_lat"], check["lat_drawn"], atol=1e-6)
    np.testing.assert_allclose(
        haversine_km(check["lon"], check["lat"], check["lon_drawn"], check["lat_drawn"]),
        check["offset_km"],
        atol=1e-3,
    )
    rms = float(np.sqrt(np.mean(distance**2)))
    print(f"label error over {len(merged)} track rows: RMS {rms:.1f} km, median {np.median(distance):.1f} km")
    assert 0.7 * REALISTIC.label_error_rms_km <= rms <= 1.3 * REALISTIC.label_error_rms_km
    assert lag1_correlation(errors) > 0.5  # slowly varying, not hour-to-hour noise
    # the labelled positions stay on the image, so a label never leaves its storm without a tile
    x, y = basin.grid.lonlat_to_pixel(tracks["lon"].to_numpy(), tracks["lat"].to_numpy())
    assert basin.grid.on_grid(x, y).all()


def test_label_error_statistics_over_two_months(long_plan: BasinPlan) -> None:
    errors = label_error_table(long_plan.medicanes)
    rms = float(np.sqrt(np.mean(errors["offset_km"] ** 2)))
    setting = REALISTIC.label_error_rms_km
    assert 0.85 * setting <= rms <= 1.15 * setting, rms
    # a 2-D Gaussian offset: its distance is Rayleigh, median = sqrt(ln 2) x RMS
    assert np.median(errors["offset_km"]) == pytest.approx(np.sqrt(np.log(2.0)) * rms, rel=0.1)
    expected = np.exp(-1.0 / REALISTIC.label_error_correlation_h)
    assert lag1_correlation(errors) == pytest.approx(expected, abs=0.05)


# ---- eyes -------------------------------------------------------------------------------------


def test_eye_free_hours_and_eyeless_storms_near_their_settings(
    basin: SyntheticBasin, long_plan: BasinPlan
) -> None:
    filled = in_window_fill(long_plan)
    assert abs(filled.mean() - REALISTIC.eye_fill_fraction) < 0.06, filled.mean()
    eyeless = sum(p.realism.eyeless for p in long_plan.medicanes if p.realism is not None)
    expected = REALISTIC.eyeless_medicane_fraction * len(long_plan.medicanes)
    assert np.floor(expected) <= eyeless <= np.ceil(expected), (eyeless, expected)
    # in the files: the drawn eye's opacity says when an eye shows; filled or eyeless = none
    truth = basin.truth()
    mature = truth[(truth["kind"] == "medicane") & truth["in_window"] & (truth["time"].dt.minute == 0)]
    eyeless_ids = set(basin.storms.loc[basin.storms["eyeless"], "storm_id"])
    assert len(eyeless_ids) == 1 and eyeless_ids == set(truth.loc[truth["eyeless"], "object_id"])
    assert (mature.loc[mature["object_id"].isin(eyeless_ids), "eye_opacity"] == 0).all()
    with_eye = mature[~mature["object_id"].isin(eyeless_ids)]
    share = float((with_eye["eye_fill"] >= 0.5).mean())
    print(
        f"eye-free share of mature hours (storms with an eye): {share:.2f}; all storms: {(mature['eye_opacity'] < 0.5).mean():.2f}"
    )
    assert abs(share - REALISTIC.eye_fill_fraction) < 0.1
    np.testing.assert_allclose(with_eye["eye_opacity"], 1.0 - with_eye["eye_fill"], atol=1e-6)
    peaks = basin.storms.set_index("storm_id")["peak_intensity"]
    low, high = REALISTIC.eyeless_peak_intensity
    assert all(low <= peaks[s] <= high for s in eyeless_ids) and (peaks.drop(list(eyeless_ids)) == 1.0).all()


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def darkest_near(image: np.ndarray, x: float, y: float, r: int = 3) -> tuple[float, float]:
    """Darkness-weighted centroid of the pixels darker than halfway to the cloud, within ``r`` px."""
    b = image.astype(np.float64).sum(axis=2)
    x0, y0 = max(0, int(round(x)) - r), max(0, int(round(y)) - r)
    window = b[y0 : int(round(y)) + r + 1, x0 : int(round(x)) + r + 1]
    level = 0.5 * (window.min() + np.percentile(window, 90))
    w = np.clip(level - window, 0.0, None)
    yy, xx = np.mgrid[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]]
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def test_a_clear_eye_is_drawn_at_the_true_centre_not_at_the_label(basin: SyntheticBasin) -> None:
    truth = basin.truth()
    faulty = set(pd.to_datetime(basin.faults["time"]))
    clear = truth[
        (truth["kind"] == "medicane")
        & (truth["eye_opacity"] > 0.99)
        & (truth["time"].dt.minute == 0)
        & ~truth["time"].isin(faulty)
    ]
    labels = basin.label_error().set_index(["storm_id", "time"])
    eye_errors, label_errors = [], []
    for row in clear.itertuples():
        ex, ey = darkest_near(load(frame_path(basin.frames_dir, row.time)), row.x, row.y)
        eye_errors.append(np.hypot(ex - row.x, ey - row.y))
        label_errors.append(labels.loc[(row.object_id, row.time), "offset_km"])
    assert len(eye_errors) > 20
    assert np.median(eye_errors) < 0.5 and max(eye_errors) < 2.0
    assert np.median(label_errors) > 5.0  # and the label is somewhere else


def test_eye_colour_is_no_longer_a_colour_of_its_own() -> None:
    """demo: the eye's colour is 14 counts from anything else in the tile; realistic: within noise."""

    def stats(preset: str) -> EyeColourStats:
        config = get_preset(preset)
        grid = grid_for(config)
        parts = []
        for k in range(2):
            start = pd.Timestamp("2023-10-01") + pd.Timedelta(days=4 * k)
            plan = make_plan(np.random.default_rng(k), config, grid, get_geography(), start, 1.5)
            parts.append(eye_colour_uniqueness(FrameRenderer(config, grid, plan, start, 432, k), 432))
        return EyeColourStats.combine(parts)

    demo, realistic = stats("demo"), stats("realistic")
    for name, s in (("demo", demo), ("realistic", realistic)):
        print(
            f"{name}: {s.frames} frames, {s.eye_pixels} eye px; unique exact {s.eye_unique_share(0):.2f}, "
            f"within 2 {s.eye_unique_share(2):.2f}, within 4 {s.eye_unique_share(4):.2f}; other px within 2 "
            f"{s.other_unique_share(2):.2f}; median nearest {np.median(s.eye_nearest):.0f} counts"
        )
    assert demo.frames > 30 and realistic.frames > 15
    assert demo.eye_unique_share(4) > 0.7 and np.median(demo.eye_nearest) >= 8
    assert realistic.eye_unique_share(4) < 0.3 and np.median(realistic.eye_nearest) <= 3


def test_cloud_shield_is_off_centre(basin: SyntheticBasin) -> None:
    """The storm's own cloud (frame minus background) is centred towards the planned shield offset."""
    renderer = FrameRenderer(
        basin.config, basin.grid, basin.plan, basin.start, len(basin.frame_times), basin.seed
    )
    dots = []
    for s in renderer.medicanes:
        for k in range(0, len(s), 36):  # every 3 hours
            i = s.first + k
            offset = np.hypot(s.shield_east_km[k], s.shield_north_km[k])  # type: ignore[index]
            if s.intensity[k] < 0.5 or offset < 0.2 * s.radius_km[k] or not 0 <= i < len(basin.frame_times):
                continue
            added = renderer.render(i).astype(np.float64).sum(axis=2) - renderer.background(i).sum(axis=0)
            r = int(np.ceil(2.0 * s.radius_km[k] / min(s.dx_km[k], s.dy_km[k])))
            x0, x1 = max(0, int(s.x[k]) - r), min(basin.grid.width, int(s.x[k]) + r + 1)
            y0, y1 = max(0, int(s.y[k]) - r), min(basin.grid.height, int(s.y[k]) + r + 1)
            w = np.clip(added[y0:y1, x0:x1], 0.0, None)  # brightness the storm (and noise) added
            yy, xx = np.mgrid[y0:y1, x0:x1]
            east = float((w * (xx - s.x[k])).sum() / w.sum()) * s.dx_km[k]
            north = -float((w * (yy - s.y[k])).sum() / w.sum()) * s.dy_km[k]
            dots.append((east * s.shield_east_km[k] + north * s.shield_north_km[k]) > 0)  # type: ignore[index]
    assert len(dots) >= 5
    assert np.mean(dots) >= 0.8, dots


# ---- look-alikes --------------------------------------------------------------------------------


def test_look_alikes_with_an_eye_over_sea_and_over_land(basin: SyntheticBasin) -> None:
    truth = basin.truth()
    geo = get_geography()
    tracks = read_tracks(basin.tracks_path)
    for kind, want_sea in (("sea_vortex", True), ("land_vortex", False)):
        rows = truth[(truth["kind"] == kind) & (truth["eye_opacity"] >= 0.7)]
        assert rows["object_id"].nunique() >= 1, kind
        assert (geo.is_sea(rows["lon"].to_numpy(), rows["lat"].to_numpy()) == want_sea).all(), kind
        assert not rows["in_tracks"].any() and not set(rows["object_id"]) & set(tracks["storm_id"])
    # a sea vortex's eye is in the image: its centre is darker than its cloud ring
    sea = truth[(truth["kind"] == "sea_vortex") & (truth["eye_opacity"] >= 0.99)]
    faulty = set(pd.to_datetime(basin.faults["time"]))
    row = sea[~sea["time"].isin(faulty)].iloc[len(sea) // 2]
    image = load(frame_path(basin.frames_dir, row["time"])).astype(np.float64).sum(axis=2)
    x, y = int(round(row["x"])), int(round(row["y"]))
    ring_px = 0.3 * row["radius_km"] / float(np.mean(basin.grid.pixel_size_km(row["x"], row["y"])))
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring_y = np.clip(np.round(y + ring_px * np.sin(angles)).astype(int), 0, image.shape[0] - 1)
    ring_x = np.clip(np.round(x + ring_px * np.cos(angles)).astype(int), 0, image.shape[1] - 1)
    ring = image[ring_y, ring_x]
    assert image[y, x] < np.median(ring) - 60


# ---- settings and other presets ----------------------------------------------------------------


def test_realism_settings_are_off_in_the_old_presets_and_validated() -> None:
    assert not any(PRESETS[name].realism for name in ("demo", "default", "hard"))
    assert REALISTIC.realism
    demo = PRESETS["demo"]
    assert (REALISTIC.width, REALISTIC.height, REALISTIC.tiles) == (demo.width, demo.height, demo.tiles)
    for bad in (
        {"eye_fill_fraction": 1.5},
        {"label_error_rms_km": -1.0},
        {"label_error_correlation_h": 0.0},
        {"shield_elongation": (0.5, 1.0)},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SyntheticConfig(**bad)  # type: ignore[arg-type]


def test_switching_the_label_error_off_keeps_the_images() -> None:
    """Every vortex draws the same realism numbers whatever is on: only tracks.csv changes."""
    grid = grid_for(REALISTIC)
    start = pd.Timestamp("2023-10-01")
    plans = [
        make_plan(np.random.default_rng(5), config, grid, get_geography(), start, 1.0)
        for config in (REALISTIC, REALISTIC.replace(label_error_rms_km=0.0))
    ]
    with_error, without = (label_error_table(p.medicanes) for p in plans)
    assert (without["offset_km"] == 0).all() and with_error["offset_km"].median() > 5
    frames = [
        FrameRenderer(c, grid, p, start, 288, 5).render(150)
        for c, p in zip((REALISTIC, REALISTIC.replace(label_error_rms_km=0.0)), plans)
    ]
    np.testing.assert_array_equal(frames[0], frames[1])


def test_cli_synth_realistic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medicane_hf.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--days", "0.25", "--preset", "realistic", "--quiet"]) == 0
    assert "preset realistic" in capsys.readouterr().out
    assert (out / "label_error.csv").is_file()
    assert json.loads((out / "synthetic.json").read_text())["config"]["label_error_rms_km"] == 20.0


# ---- cached datasets ------------------------------------------------------------------------------

EPISODES = (("2023-10-01", 0.25), ("2023-10-03", 0.25))


def test_ensure_synthetic_dataset_builds_once_and_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []
    real_build = default_module._build

    def counting_build(target: Path, *args: object, **kwargs: object) -> None:
        builds.append(target)
        real_build(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(default_module, "_build", counting_build)
    kwargs = dict(preset="realistic", seed=3, episodes=EPISODES, cache_dir=tmp_path, progress=False)
    folder = ensure_synthetic_dataset("realistic-test", **kwargs)  # type: ignore[arg-type]
    assert folder == tmp_path / "realistic-test" and (folder / "dataset_info.json").is_file()
    assert json.loads((folder / "source" / "recipe.json").read_text())["preset"] == "realistic"
    started = time.perf_counter()
    assert ensure_synthetic_dataset("realistic-test", **kwargs) == folder  # type: ignore[arg-type]
    assert len(builds) == 1 and time.perf_counter() - started < 1.0
    # the source tables carry the dataset's storm ids
    tracks = read_tracks(folder / "source" / "tracks.csv")
    errors = read_source_label_error(folder)
    assert set(errors["storm_id"]) == set(tracks["storm_id"]) and len(errors) == len(tracks)
    merged = tracks.merge(errors, on=["storm_id", "time"], validate="1:1")
    np.testing.assert_allclose(merged["lon"], merged["label_lon"], atol=1e-6)
    truth = read_source_truth(folder)
    assert set(tracks["storm_id"]) <= set(truth.loc[truth["kind"] == "medicane", "object_id"])
    # a name stands for one recipe: other seed, or other preset settings under the same name
    with pytest.raises(ValueError, match="another recipe.*seed"):
        ensure_synthetic_dataset("realistic-test", **{**kwargs, "seed": 4})  # type: ignore[arg-type]
    monkeypatch.setitem(PRESETS, "realistic", REALISTIC.replace(eye_fill_fraction=0.5))
    with pytest.raises(ValueError, match="config.eye_fill_fraction"):
        ensure_synthetic_dataset("realistic-test", **kwargs)  # type: ignore[arg-type]
    monkeypatch.setitem(PRESETS, "realistic", REALISTIC)
    # a setting added after the build (absent from its recipe) is fine while at its default
    recipe_path = folder / "source" / "recipe.json"
    recorded = json.loads(recipe_path.read_text())
    del recorded["config"]["eye_texture"]  # realistic sets it: absent = default 0 != 0.35
    recipe_path.write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="config.eye_texture"):
        ensure_synthetic_dataset("realistic-test", **kwargs)  # type: ignore[arg-type]
    del recorded["config"]["sea_vortex_duration_h"]  # realistic keeps the default
    recorded["config"]["eye_texture"] = REALISTIC.eye_texture
    recipe_path.write_text(json.dumps(recorded))
    assert ensure_synthetic_dataset("realistic-test", **kwargs) == folder  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        ensure_synthetic_dataset("x", preset="nope", seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="plain folder name"):
        ensure_synthetic_dataset("a/b", preset="demo", seed=0, cache_dir=tmp_path)


def test_label_error_of_a_dataset_without_realism_is_zero(tmp_path: Path) -> None:
    folder = ensure_synthetic_dataset(
        "demo-test", preset="demo", seed=1, episodes=EPISODES[:1], cache_dir=tmp_path, progress=False
    )
    errors = read_source_label_error(folder)
    assert (
        len(errors) == len(read_tracks(folder / "source" / "tracks.csv")) and (errors["offset_km"] == 0).all()
    )
