"""SEVIRI grid: lon/lat <-> pixel against the old system's track files, corners, sizes, haversine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.geo import EARTH_RADIUS_KM, SeviriGrid, haversine_km

GRID = SeviriGrid()


def _compare_with_old_pixels(path: Path) -> tuple[int, float, np.ndarray]:
    """Our rounded pixel vs the file's (x_pix, y_pix - 1): (rows off the grid, exact fraction, max |diff|)."""
    df = pd.read_csv(path)
    x, y, on = GRID.lonlat_to_pixel_rounded(df["lon"].to_numpy(), df["lat"].to_numpy())
    dx = x[on] - df["x_pix"].to_numpy()[on]
    # the old system counted rows from 1 at the top: its y_pix is our y + 1
    dy = y[on] - (df["y_pix"].to_numpy()[on] - 1)
    exact = float(np.mean((dx == 0) & (dy == 0)))
    return int((~on).sum()), exact, np.array([np.abs(dx).max(), np.abs(dy).max()])


@pytest.mark.parametrize(
    ("filename", "expected_off_grid"),
    [("medicanes_new_windows.csv", 0), ("manos_medicanes_only.csv", 16)],
)
def test_matches_old_pixels_within_one(shared_dir: Path, filename: str, expected_off_grid: int) -> None:
    off_grid, exact, max_diff = _compare_with_old_pixels(shared_dir / "tracks" / filename)
    print(
        f"{filename}: {exact:.4f} of on-grid rows exactly equal, {off_grid} off the grid, max |dx|,|dy| = {max_diff}"
    )
    assert off_grid == expected_off_grid
    assert max_diff.max() <= 1
    assert exact >= 0.90


def test_points_east_of_grid_are_off_grid_not_clamped(shared_dir: Path) -> None:
    df = pd.read_csv(shared_dir / "tracks" / "manos_medicanes_only.csv")
    x, _, on = GRID.lonlat_to_pixel_rounded(df["lon"].to_numpy(), df["lat"].to_numpy())
    # the old code clamped these onto column 1289; they are east of it
    assert (df.loc[~on, "x_pix"] == GRID.width - 1).all()
    assert (x[~on] > GRID.width - 1).all()
    xf, _ = GRID.lonlat_to_pixel(df["lon"].to_numpy()[~on], df["lat"].to_numpy()[~on])
    assert (xf > GRID.width - 0.5).all()


def test_pixel_lonlat_pixel_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, GRID.width - 0.5, 5000)
    y = rng.uniform(-0.5, GRID.height - 0.5, 5000)
    lon, lat = GRID.pixel_to_lonlat(x, y)
    x2, y2 = GRID.lonlat_to_pixel(lon, lat)
    assert np.abs(x2 - x).max() < 1e-6
    assert np.abs(y2 - y).max() < 1e-6
    assert GRID.on_grid(x2, y2).all()


def test_corners_match_domain_facts() -> None:
    lon, lat = GRID.pixel_to_lonlat(
        [0, GRID.width - 1, 0, GRID.width - 1], [GRID.height - 1, 0, 0, GRID.height - 1]
    )
    np.testing.assert_allclose(lon[:2], [-7.0, 46.0], atol=1e-9)
    np.testing.assert_allclose(lat[:2], [30.0, 48.0], atol=1e-9)
    # the other two corners are off the lon/lat box
    np.testing.assert_allclose([lon[2], lat[2]], [-12.3, 46.9], atol=0.1)
    np.testing.assert_allclose([lon[3], lat[3]], [35.9, 30.4], atol=0.1)
    dx_m, dy_m = GRID.spacing_m
    assert dx_m == pytest.approx(3000.0, abs=15.0)
    assert dy_m == pytest.approx(3000.0, abs=15.0)


def test_pixel_size_on_ground_grows_north_and_east() -> None:
    xs, ys = np.meshgrid(np.arange(0, GRID.width - 1, 16), np.arange(0, GRID.height - 1, 8))
    dx, dy = GRID.pixel_size_km(xs, ys)
    assert dx.min() >= 3.0 and dy.min() >= 3.0
    # DOMAIN.md's "3-6 km" is the pixel's mean side; the north-south side reaches ~7 km in the NE corner
    assert np.sqrt(dx * dy).max() <= 6.0
    assert dx.max() <= 5.0 and dy.max() <= 7.5
    # along the southern row, west vs east; along a central column, south vs north
    dx_row, dy_row = GRID.pixel_size_km([0, GRID.width - 2], GRID.height - 2)
    assert dx_row[1] > dx_row[0] and dy_row[1] > dy_row[0]
    _, dy_col = GRID.pixel_size_km(600, [GRID.height - 2, 0])
    assert dy_col[1] > dy_col[0]


def test_invisible_points_are_nan_and_off_grid() -> None:
    x, y = GRID.lonlat_to_pixel([120.0, 9.5], [0.0, 40.0])
    assert np.isnan(x[0]) and np.isnan(y[0]) and np.isfinite(x[1])
    xi, yi, on = GRID.lonlat_to_pixel_rounded([120.0, 9.5], [0.0, 40.0])
    assert on.tolist() == [False, True]
    assert (xi[0], yi[0]) == (-1, -1)
    lon, lat = GRID.pixel_to_lonlat(1e6, 1e6)  # far off the Earth's disc
    assert np.isnan(lon) and np.isnan(lat)


def test_scalars_and_shapes() -> None:
    x, y = GRID.lonlat_to_pixel(14.0, 36.0)
    assert x.shape == () and 0 < float(x) < GRID.width - 1 and 0 < float(y) < GRID.height - 1
    xs, ys = GRID.lonlat_to_pixel(np.full((3, 4), 14.0), 36.0)
    assert xs.shape == ys.shape == (3, 4)


def test_rounding_to_nearest_pixel_and_grid_edges() -> None:
    xs = [
        12.5 - 1e-5,
        12.5 + 1e-5,
        GRID.width - 0.5 - 1e-5,
        GRID.width - 0.5 + 1e-5,
        -0.5 + 1e-5,
        -0.5 - 1e-5,
    ]
    lon, lat = GRID.pixel_to_lonlat(xs, 3.0)
    xi, yi, on = GRID.lonlat_to_pixel_rounded(lon, lat)
    assert xi.tolist() == [12, 13, GRID.width - 1, GRID.width, 0, -1]
    assert on.tolist() == [True, True, True, False, True, False]
    assert (yi == 3).all()


def test_haversine_known_distances() -> None:
    # one degree of arc on this sphere
    assert float(haversine_km(0, 0, 1, 0)) == pytest.approx(2 * np.pi * EARTH_RADIUS_KM / 360, rel=1e-12)
    assert float(haversine_km(0, 90, 0, -90)) == pytest.approx(np.pi * EARTH_RADIUS_KM, rel=1e-12)
    # Rome (12.4964E, 41.9028N) - Athens (23.7275E, 37.9838N): about 1051 km great circle
    assert float(haversine_km(12.4964, 41.9028, 23.7275, 37.9838)) == pytest.approx(1051.0, abs=5.0)
    d = haversine_km([0, 0], [0, 0], [0, 1], [0, 1])
    assert d.shape == (2,) and d[0] == 0.0


def test_custom_small_grid_round_trips(tmp_path: Path) -> None:
    small = SeviriGrid(width=384, height=128)
    # same corners, coarser pixels
    assert small.spacing_m[0] == pytest.approx(GRID.spacing_m[0] * (GRID.width - 1) / 383)
    lon, lat = small.pixel_to_lonlat([0, 383], [127, 0])
    np.testing.assert_allclose(lon, [-7.0, 46.0], atol=1e-9)
    np.testing.assert_allclose(lat, [30.0, 48.0], atol=1e-9)
    x, y = small.lonlat_to_pixel(*small.pixel_to_lonlat(100.25, 50.75))
    assert float(x) == pytest.approx(100.25, abs=1e-6) and float(y) == pytest.approx(50.75, abs=1e-6)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(small.to_dict()))
    again = SeviriGrid.from_dict(json.loads(path.read_text()))
    assert again == small
    assert again.to_dict() == small.to_dict()


def test_other_projection_settings_take_effect() -> None:
    shifted = SeviriGrid(lon_0=0.0)
    assert shifted.extent_m != GRID.extent_m
    x, y = shifted.lonlat_to_pixel(*shifted.pixel_to_lonlat(10.0, 10.0))
    assert float(x) == pytest.approx(10.0, abs=1e-6) and float(y) == pytest.approx(10.0, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 1}, "width and height"),
        ({"sweep": "z"}, "sweep"),
        ({"lower_left": (46.0, 48.0), "upper_right": (-7.0, 30.0)}, "east and north"),
        ({"upper_right": (120.0, 48.0)}, "not visible"),
    ],
)
def test_bad_settings_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SeviriGrid(**kwargs)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        SeviriGrid.from_dict({**GRID.to_dict(), "pixel_size": 3})
