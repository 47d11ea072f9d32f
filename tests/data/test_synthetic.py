"""The synthetic Mediterranean: files in the real layout, storms where the tracks say, faults as listed.

Uses the demo preset (384 x 128 px) and spans of a day or less, so the module runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from medicane_hf.data.geo import SeviriGrid, haversine_km
from medicane_hf.data.splits import storm_groups
from medicane_hf.data.synthetic import (
    PRESETS,
    SyntheticBasin,
    frame_path,
    generate_basin,
    grid_for,
    tracks_table,
)
from medicane_hf.data.synthetic.basin import _truth_table
from medicane_hf.data.synthetic.config import SyntheticConfig, airmass_kelvin_to_rgb, get_preset
from medicane_hf.data.synthetic.geography import get_geography
from medicane_hf.data.synthetic.plans import make_plan
from medicane_hf.data.synthetic.rendering import FrameRenderer
from medicane_hf.data.tracks import interpolate_positions, read_tracks

# More storms and faults than the demo's daily rate, so one day exercises every check.
TEST_CONFIG = PRESETS["demo"].replace(
    medicanes_per_day=3.0, black_frames_per_day=2.0, noisy_frames_per_day=2.0
)


@pytest.fixture(scope="module")
def basin(tmp_path_factory: pytest.TempPathFactory) -> SyntheticBasin:
    out = tmp_path_factory.mktemp("synthetic_day")
    return generate_basin(out, start="2023-10-01", days=1, seed=11, config=TEST_CONFIG, progress=False)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB", path
        return np.asarray(im)


def clean_frames(basin: SyntheticBasin) -> set[pd.Timestamp]:
    faulty = set(pd.to_datetime(basin.faults["time"]))
    return {t for t in basin.frame_times if t not in faulty}


def expected_centres(basin: SyntheticBasin) -> pd.DataFrame:
    """Storm centres at every frame time from tracks.csv alone (read, interpolate, project)."""
    tracks = read_tracks(basin.tracks_path)
    pos = interpolate_positions(tracks, basin.frame_times)
    pos["x"], pos["y"] = basin.grid.lonlat_to_pixel(pos["lon"].to_numpy(), pos["lat"].to_numpy())
    return pos


def eye_centre(image: np.ndarray, x: float, y: float, search_px: float) -> tuple[float, float]:
    """Centre of the dark eye inside the bright disc: darkness-weighted centroid near (x, y).

    Pixels within ``search_px`` of (x, y); weight = how much darker than halfway between the
    darkest pixel and the bright cloud (90th percentile) a pixel is.
    """
    brightness = image.astype(np.float64).sum(axis=2)
    r = int(np.ceil(search_px))
    x0, x1 = max(0, int(round(x)) - r), min(image.shape[1], int(round(x)) + r + 1)
    y0, y1 = max(0, int(round(y)) - r), min(image.shape[0], int(round(y)) + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    b = brightness[y0:y1, x0:x1]
    disc = (xx - x) ** 2 + (yy - y) ** 2 <= search_px**2
    level = 0.5 * (b[disc].min() + np.percentile(b[disc], 90))
    w = np.where(disc, np.clip(level - b, 0.0, None), 0.0)
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def radius_px(basin: SyntheticBasin, radius_km: float, x: float, y: float) -> float:
    dx, dy = basin.grid.pixel_size_km(x, y)
    return float(radius_km / max(float(dx), float(dy)))


# ---- files --------------------------------------------------------------------------------------


def test_frames_in_the_archive_layout(basin: SyntheticBasin) -> None:
    pngs = sorted(basin.frames_dir.rglob("*.png"))
    missing = basin.faults[basin.faults["fault"] == "missing"]
    assert len(pngs) == len(basin.frame_times) - len(missing) == basin.n_frames_written
    assert len(basin.frame_times) == 288
    first = basin.frame_times[0]
    assert (
        frame_path(basin.frames_dir, first) == basin.frames_dir / "2023/10/01/airmass_rgb_20231001_0000.png"
    )
    assert all(p.parent.relative_to(basin.frames_dir).as_posix() == "2023/10/01" for p in pngs)
    names = {p.name for p in pngs}
    assert "airmass_rgb_20231001_2355.png" in names or basin.frame_times[-1] in set(
        pd.to_datetime(missing["time"])
    )
    image = load(pngs[0])
    assert image.shape == (128, 384, 3) and image.dtype == np.uint8


def test_grid_json_describes_the_frames(basin: SyntheticBasin) -> None:
    meta = json.loads(basin.grid_path.read_text())
    grid = SeviriGrid.from_dict(meta["grid"])
    assert grid == basin.grid == SeviriGrid(width=384, height=128)
    assert (grid.lower_left, grid.upper_right) == ((-7.0, 30.0), (46.0, 48.0))
    assert meta["tiles"] == {"tile_size": 64, "stride_x": 64, "stride_y": 64}


def test_presets_are_configs_with_the_documented_grids() -> None:
    assert all(isinstance(c, SyntheticConfig) for c in PRESETS.values())
    full = get_preset("default")
    assert (full.width, full.height, full.tile_size, full.stride_x, full.stride_y) == (
        1290,
        420,
        224,
        213,
        196,
    )
    hard = get_preset("hard")
    assert hard.contrast < full.contrast and hard.convection_per_day > full.convection_per_day
    with pytest.raises(ValueError, match="demo"):
        get_preset("huge")
    with pytest.raises(ValueError, match="no settings"):
        PRESETS["demo"].replace(storms_per_week=3)


def test_airmass_colours_follow_the_channel_definitions() -> None:
    # R = WV6.2-WV7.3 in [-25, 0] K, G = IR9.7-IR10.8 in [-40, 5] K, B = WV6.2 in [243, 208] K inverted
    rgb = airmass_kelvin_to_rgb([[-25.0, -40.0, 243.0], [0.0, 5.0, 208.0], [-12.5, -17.5, 225.5]])
    np.testing.assert_allclose(rgb, [[0, 0, 0], [255, 255, 255], [127.5, 127.5, 127.5]], atol=1e-3)
    cfg = PRESETS["demo"]
    warm, cold, dry, cloud = (
        airmass_kelvin_to_rgb(k) for k in (cfg.warm_air_k, cfg.cold_air_k, cfg.dry_air_k, cfg.cloud_k)
    )
    assert warm[1] == warm.max()  # warm air masses are green
    assert cold[2] == cold.max()  # cold ones blue/violet
    assert dry[0] == dry.max()  # dry intrusions red/orange
    assert cloud.min() > 200  # thick high cloud white


# ---- storms in the images -----------------------------------------------------------------------


def test_eye_is_where_the_tracks_file_says(basin: SyntheticBasin) -> None:
    """At every clean frame of every Medicane window, the eye found in the image is within 2 px of the track."""
    expected = expected_centres(basin)
    expected = expected[expected["in_window"]]
    truth = basin.truth()
    radii = truth[truth["kind"] == "medicane"].set_index(["object_id", "time"])["radius_km"]
    clean = clean_frames(basin)
    errors = []
    for row in expected.itertuples():
        if row.time not in clean:
            continue
        image = load(frame_path(basin.frames_dir, row.time))
        search = max(3.0, 0.35 * radius_px(basin, radii[(row.storm_id, row.time)], row.x, row.y))
        ex, ey = eye_centre(image, row.x, row.y, search)
        errors.append(np.hypot(ex - row.x, ey - row.y))
    errors = np.asarray(errors)
    print(
        f"eye vs track over {errors.size} storm-frames: mean {errors.mean():.3f} px, max {errors.max():.3f} px"
    )
    assert errors.size > 200
    assert errors.max() < 2.0
    # a one-row shift (the old system's bug) would show here
    assert errors.mean() < 0.5


@pytest.mark.parametrize("preset", ["default", "hard"])
def test_full_grid_eyes_on_track(preset: str) -> None:
    """On the real 1290 x 420 grid (3-6 km pixels) the eye is on the track too, even at low contrast."""
    config = get_preset(preset)
    grid = grid_for(config)
    start = pd.Timestamp("2023-06-01")
    plan = make_plan(np.random.default_rng(3), config, grid, get_geography(), start, 1.0)
    renderer = FrameRenderer(config, grid, plan, start, 288, seed=3)
    errors = []
    for storms in renderer.medicanes:
        p = storms.plan
        k = int((p.window_start + (p.window_end - p.window_start) / 2 - p.start) / pd.Timedelta(minutes=5))
        image = renderer.render(storms.first + k)
        assert image.shape == (420, 1290, 3)
        search = max(3.0, 0.35 * float(storms.radius_km[k]) / max(storms.dx_km[k], storms.dy_km[k]))
        ex, ey = eye_centre(image, storms.x[k], storms.y[k], search)
        errors.append(np.hypot(ex - storms.x[k], ey - storms.y[k]))
    assert errors and max(errors) < 1.0, errors


def test_truth_agrees_with_tracks_file(basin: SyntheticBasin) -> None:
    expected = expected_centres(basin)
    truth = basin.truth()
    medicanes = truth[truth["kind"] == "medicane"].rename(columns={"object_id": "storm_id"})
    merged = expected.merge(medicanes, on=["storm_id", "time"], suffixes=("", "_truth"), validate="1:1")
    assert len(merged) == len(medicanes) == len(expected)
    np.testing.assert_allclose(merged["x_truth"], merged["x"], atol=1e-3)
    np.testing.assert_allclose(merged["y_truth"], merged["y"], atol=1e-3)
    assert (merged["in_window"] == merged["in_window_truth"]).all()
    assert set(merged.loc[merged["in_window"], "phase"]) == {"mature"}
    # look-alikes are in the truth but never in the tracks file
    assert {"land_vortex", "convection"} <= set(truth["kind"]) or {"convection"} <= set(truth["kind"])
    assert not truth.loc[truth["kind"] != "medicane", "in_tracks"].any()


def angular_profile(image: np.ndarray, grid: SeviriGrid, x: float, y: float, r_km: np.ndarray) -> np.ndarray:
    """Brightness on circles of radii ``r_km`` around (x, y), 360 one-degree bins counter-clockwise from east."""
    dx, dy = (float(v) for v in grid.pixel_size_km(x, y))
    theta = np.radians(np.arange(360.0))
    east = r_km[:, None] * np.cos(theta)[None]
    north = r_km[:, None] * np.sin(theta)[None]
    coords = np.stack([y - north / dy, x + east / dx])
    brightness = image.astype(np.float64).sum(axis=2)
    ring = ndimage.map_coordinates(brightness, coords, order=1)
    return (ring - ring.mean(axis=1, keepdims=True)).sum(axis=0)


def angular_shift_deg(before: np.ndarray, after: np.ndarray, limit: float = 60.0) -> float:
    """Rotation (degrees, counter-clockwise positive) that best maps ``before`` onto ``after``.

    Only shifts within ``limit`` are considered: a 15-minute step turns at most 20 degrees at the
    fastest configured spin, and the limit removes the 180-degree ambiguity of two spiral arms.
    """
    corr = np.fft.irfft(np.fft.rfft(after) * np.conj(np.fft.rfft(before)), n=before.size)
    lags = np.arange(before.size)
    lags = np.where(lags > before.size // 2, lags - before.size, lags)
    corr = np.where(np.abs(lags) <= limit, corr, -np.inf)
    return float(lags[int(np.argmax(corr))])


def test_storms_rotate_counter_clockwise(basin: SyntheticBasin) -> None:
    truth = basin.truth()
    truth = truth[(truth["kind"] == "medicane") & truth["in_window"]].set_index(["object_id", "time"])
    clean = clean_frames(basin)
    step = pd.Timedelta(minutes=15)
    measured = []
    for storm in basin.storms.itertuples():
        times = truth.loc[storm.storm_id].index
        for t0 in times[::12]:
            t1 = t0 + step
            if t1 not in times or t0 not in clean or t1 not in clean:
                continue
            a, b = truth.loc[(storm.storm_id, t0)], truth.loc[(storm.storm_id, t1)]
            radii = np.linspace(0.4, 1.1, 8) * a["radius_km"]
            p0 = angular_profile(load(frame_path(basin.frames_dir, t0)), basin.grid, a["x"], a["y"], radii)
            p1 = angular_profile(load(frame_path(basin.frames_dir, t1)), basin.grid, b["x"], b["y"], radii)
            measured.append((storm.storm_id, angular_shift_deg(p0, p1), storm.rotation_deg_per_h * 0.25))
    shifts = pd.DataFrame(measured, columns=["storm_id", "measured", "set"])
    print(f"rotation over 15 min (deg, CCW > 0):\n{shifts.groupby('storm_id').agg(['median', 'min', 'max'])}")
    assert len(shifts) >= 10 and shifts["storm_id"].nunique() == len(basin.storms)
    # a storm sitting in background cloud (which does not turn) can blur a pair; not the whole storm
    assert (shifts["measured"] > 0).mean() >= 0.85, "storms do not turn counter-clockwise"
    assert (shifts.groupby("storm_id")["measured"].median() > 0).all()
    # the still background can only slow the measured turn, never speed it up
    assert (shifts["measured"] <= shifts["set"] + 3.0).mean() >= 0.9
    assert (shifts["measured"] / shifts["set"]).median() > 0.5


# ---- faults -------------------------------------------------------------------------------------


def test_faults_are_in_the_files_as_listed(basin: SyntheticBasin) -> None:
    faults = pd.read_csv(basin.faults_path, parse_dates=["time"])
    assert set(faults["fault"]) == {"missing", "black", "noisy"}
    for row in faults.itertuples():
        path = frame_path(basin.frames_dir, row.time)
        if row.fault == "missing":
            assert not path.exists(), path
        elif row.fault == "black":
            assert load(path).max() == 0, path
        else:
            noisy = load(path).astype(np.float64)
            neighbour = load(frame_path(basin.frames_dir, row.time - pd.Timedelta(minutes=5))).astype(
                np.float64
            )
            # strong pixel noise: the frame-to-frame difference is far above the sensor noise
            assert np.std(noisy - neighbour) > 10.0, path
    gaps = faults[(faults["fault"] == "missing") & (faults["event_frames"] > 1)]
    assert len(gaps) > 0
    assert gaps.groupby("event_id").size().between(3, 12).all()  # 15 to 60 minutes at 5-minute frames
    clean_pair = load(frame_path(basin.frames_dir, basin.frame_times[100]))
    assert clean_pair.max() > 0


# ---- tracks -------------------------------------------------------------------------------------


def test_tracks_file_is_readable_and_physical(basin: SyntheticBasin) -> None:
    tracks = read_tracks(basin.tracks_path)
    assert sorted(tracks["storm_id"].unique()) == sorted(basin.storms["storm_id"])
    geo = get_geography()
    for storm_id, track in tracks.groupby("storm_id"):
        times = pd.DatetimeIndex(track["time"])
        assert (times == times.floor("h")).all() and (np.diff(times.asi8) == 3_600_000_000_000).all(), (
            storm_id
        )
        assert track["window_start"].nunique() == 1 and track["window_end"].nunique() == 1
        assert times[0] <= track["window_start"].iloc[0] < track["window_end"].iloc[0] <= times[-1], storm_id
        assert (geo.region_at(track["lon"], track["lat"]) == 1).all(), f"{storm_id} leaves the Mediterranean"
        lon, lat = track["lon"].to_numpy(), track["lat"].to_numpy()
        speed = haversine_km(lon[:-1], lat[:-1], lon[1:], lat[1:])
        assert speed.min() >= 5.0 and speed.max() <= 40.0, (storm_id, speed.min(), speed.max())
        x, y = basin.grid.lonlat_to_pixel(lon, lat)
        assert basin.grid.on_grid(x, y).all()


def test_demo_week_has_storms_for_every_split_and_look_alikes() -> None:
    """The embedded default (demo, 6 days) holds >= 6 distinct, separated storms and every look-alike."""
    config = PRESETS["demo"]
    grid = grid_for(config)
    start = pd.Timestamp("2023-01-01")
    plan = make_plan(np.random.default_rng(0), config, grid, get_geography(), start, 6)
    assert len(plan.medicanes) >= 6
    assert len({p.object_id for p in plan.medicanes}) == len(plan.medicanes)
    # storms overlapping in time share a split: the week must hold a group for each split
    groups = storm_groups(tracks_table(plan.medicanes), pd.Timedelta(minutes=75))
    assert len(groups) >= 3
    assert plan.land_vortices and plan.convection and plan.commas and plan.fronts
    geo = get_geography()
    for vortex in plan.land_vortices:
        assert not geo.is_sea(vortex.lon, vortex.lat).any(), vortex.object_id
    # no two Medicanes closer than the separation at the same hour
    positions = pd.concat(
        [
            pd.DataFrame({"id": p.object_id, "time": p.hours, "lon": p.lon, "lat": p.lat})
            for p in plan.medicanes
        ]
    )
    pairs = positions.merge(positions, on="time")
    pairs = pairs[pairs["id_x"] < pairs["id_y"]]
    if len(pairs):
        gap = haversine_km(pairs["lon_x"], pairs["lat_x"], pairs["lon_y"], pairs["lat_y"])
        assert gap.min() >= config.min_separation_km


# ---- determinism, API and CLI -------------------------------------------------------------------


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_storms(tmp_path: Path) -> None:
    kwargs = dict(start="2023-03-01", days=0.25, progress=False)
    a = generate_basin(tmp_path / "a", seed=5, **kwargs)
    b = generate_basin(tmp_path / "b", seed=5, workers=2, **kwargs)
    c = generate_basin(tmp_path / "c", seed=6, **kwargs)
    assert digest(a.out_dir) == digest(b.out_dir)
    assert len(digest(a.out_dir)) > 50
    track_a, track_c = read_tracks(a.tracks_path), read_tracks(c.tracks_path)
    assert not (len(track_a) == len(track_c) and np.allclose(track_a["lon"], track_c["lon"]))
    assert digest(a.out_dir)["frames/2023/03/01/airmass_rgb_20230301_0300.png"] != digest(c.out_dir).get(
        "frames/2023/03/01/airmass_rgb_20230301_0300.png"
    )


# sha256 of the old presets' output, recorded on the code before the realism settings existed
# (commit ad7a786). Float32 sin/exp/log differ in the last bit between numpy's SIMD targets,
# which can flip a pixel's rounding, so a reference holds for one numpy version and target.
OLD_PRESET_DIGESTS: dict[tuple[str, str], dict[str, str]] = {
    ("2.4", "X86_V4"): {
        "demo": "6b78f72bf50f1811d636e50bb3fe7e7c6123bdfd4058e6a131422943fef9c558",
        "default": "448fbf30fbea9cd4895d0eaf6b12d2da68b8e5e5b5e7acfb8e38cd978d734cb7",
        "hard": "af5a3627b78c602964d76edda140ea04c4b4c68e4644e6808d8a89ee53fba3cf",
    },
}


def _numpy_platform() -> tuple[str, str]:
    from numpy.lib.introspect import opt_func_info

    targets = {
        target["current"]
        for name in ("sin", "cos", "exp", "log")
        for sig, target in opt_func_info(func_name=f"^{name}$", signature="^f")[name].items()
    }
    return ".".join(np.__version__.split(".")[:2]), "+".join(sorted(targets))


def _folder_digest(folder: Path) -> str:
    """One sha256 over every file's name and bytes but synthetic.json (it lists every setting, new ones too)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "synthetic.json":
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _full_grid_digest(preset: str) -> str:
    """sha256 of four rendered frames (one noisy), the tracks table and the truth of half a day."""
    config = get_preset(preset)
    grid = grid_for(config)
    start = pd.Timestamp("2023-06-01")
    plan = make_plan(np.random.default_rng(3), config, grid, get_geography(), start, 0.5)
    renderer = FrameRenderer(config, grid, plan, start, 144, seed=3)
    h = hashlib.sha256()
    for i in (0, 70, 143):
        h.update(renderer.render(i).tobytes())
    h.update(renderer.render(71, noisy=True).tobytes())
    h.update(tracks_table(plan.medicanes).to_csv(index=False).encode())
    times = pd.date_range(start, periods=144, freq="5min")
    h.update(_truth_table(renderer, times).to_csv(index=False, float_format="%.6f").encode())
    return h.hexdigest()


def test_old_presets_keep_their_bytes(tmp_path: Path) -> None:
    """demo, default and hard write what they wrote before the realism settings existed."""
    platform = _numpy_platform()
    if platform not in OLD_PRESET_DIGESTS:
        pytest.skip(
            f"old-preset digests recorded for {sorted(OLD_PRESET_DIGESTS)}, not numpy/SIMD {platform}"
        )
    expected = OLD_PRESET_DIGESTS[platform]
    basin = generate_basin(
        tmp_path / "demo", start="2023-10-01", days=0.25, seed=7, preset="demo", progress=False
    )
    assert not (basin.out_dir / "label_error.csv").exists() and basin.label_error_path is None
    assert _folder_digest(basin.out_dir) == expected["demo"]
    for preset in ("default", "hard"):
        assert _full_grid_digest(preset) == expected[preset], preset


def test_bad_input_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on the hour"):
        generate_basin(tmp_path / "x", start="2023-01-01 00:30", days=0.25, progress=False)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        generate_basin(tmp_path / "y", preset="nope", days=0.25, progress=False)
    generate_basin(tmp_path / "z", days=0.25, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_basin(tmp_path / "z", days=0.25, progress=False)
    again = generate_basin(tmp_path / "z", days=0.25, seed=1, progress=False, overwrite=True)
    assert again.n_frames_written == len(list(again.frames_dir.rglob("*.png")))


def test_cli_writes_a_basin_and_a_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medicane_hf.cli import main

    out = tmp_path / "cli"
    code = main(["synth", "--out", str(out), "--days", "0.25", "--seed", "3", "--preview", "--quiet"])
    assert code == 0
    for name in ("tracks.csv", "grid.json", "synthetic_truth.csv", "faults.csv", "preview.png"):
        assert (out / name).is_file(), name
    with Image.open(out / "preview.png") as im:
        assert im.format == "PNG" and im.size[0] > 600
    assert "Medicanes" in capsys.readouterr().out
    assert main(["synth", "--out", str(out), "--days", "0.25"]) == 2  # frames exist, no --overwrite
    assert "overwrite" in capsys.readouterr().err
