"""A crude, fixed Mediterranean: sea polygons in lon/lat, rasterised once.

The outlines are hand-placed coastline points (about 0.3-0.5 degrees apart),
good enough to put storms over water, land vortices over land and a faint
land/sea pattern in the images; not a map. Everything downstream asks this
module, so "over sea" means the same thing to the generator and to the tests.

The raster is regular in lon/lat (``RASTER_STEP_DEG``) over a box a little
larger than the SEVIRI image; lookups take the nearest raster cell.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from matplotlib.path import Path as PolygonPath
from scipy import ndimage

from medicane_hf.data.geo import EARTH_RADIUS_KM, SeviriGrid

__all__ = ["REGION_NAMES", "Geography", "get_geography", "pixel_land_fraction"]

RASTER_STEP_DEG = 0.05
RASTER_LON = (-16.0, 50.0)
RASTER_LAT = (26.0, 51.0)

# (lon, lat) vertices of water bodies, traced along the coast.
_MEDITERRANEAN = [
    (-5.6, 36.0), (-5.0, 36.5), (-4.4, 36.7), (-2.1, 36.7), (-1.6, 37.3), (-0.7, 37.6), (0.0, 38.7),
    (-0.4, 39.4), (0.3, 40.2), (0.9, 41.0), (2.2, 41.3), (3.2, 41.9), (3.1, 42.9), (4.0, 43.5),
    (5.3, 43.3), (6.6, 43.1), (7.5, 43.8), (8.8, 44.4), (9.8, 44.1), (10.3, 43.5), (10.5, 42.9),
    (11.2, 42.4), (12.2, 41.7), (13.0, 41.2), (14.0, 40.8), (14.9, 40.2), (15.6, 40.0), (16.0, 39.4),
    (15.65, 38.0), (16.1, 38.0), (16.6, 38.4), (17.1, 39.0), (16.6, 39.6), (16.9, 40.4), (17.9, 40.2),
    (18.5, 39.8), (18.5, 40.2), (17.9, 40.6), (16.6, 41.2), (15.9, 41.6), (16.1, 41.9), (15.1, 42.0),
    (14.2, 42.5), (13.6, 43.5), (12.4, 44.2), (12.3, 45.2), (13.1, 45.7), (13.8, 45.6), (13.6, 45.1),
    (14.3, 45.2), (15.2, 44.3), (16.4, 43.5), (17.6, 42.9), (18.5, 42.4), (19.4, 41.8), (19.4, 40.9),
    (19.3, 40.4), (20.0, 39.7), (20.7, 38.9), (21.1, 38.3), (21.6, 37.6), (21.7, 36.8), (22.4, 36.5),
    (23.1, 36.4), (22.9, 37.5), (24.0, 37.7), (23.2, 39.0), (22.9, 39.6), (22.6, 40.4), (23.0, 40.6),
    (24.0, 40.7), (25.0, 40.9), (26.0, 40.8), (26.3, 40.1), (26.2, 39.4), (26.9, 38.4), (27.3, 37.6),
    (27.4, 36.9), (28.2, 36.7), (29.2, 36.3), (30.5, 36.4), (30.7, 36.9), (31.9, 36.6), (32.8, 36.1),
    (34.0, 36.3), (34.8, 36.8), (35.8, 36.8), (36.2, 36.6), (35.8, 35.8), (35.9, 35.2), (35.5, 33.9),
    (35.1, 33.1), (34.9, 32.4), (34.5, 31.5), (34.2, 31.3), (32.3, 31.3), (31.6, 31.6), (30.3, 31.4),
    (29.5, 30.9), (28.0, 31.1), (25.2, 31.6), (24.0, 32.0), (23.1, 32.6), (22.0, 32.9), (20.9, 32.7),
    (20.0, 32.0), (19.9, 31.0), (19.0, 30.3), (17.5, 30.9), (16.0, 31.3), (15.3, 32.1), (15.2, 32.4),
    (13.2, 32.9), (12.1, 32.9), (10.9, 33.8), (10.1, 33.9), (10.8, 34.7), (11.1, 35.5), (10.6, 35.8),
    (10.6, 36.4), (11.05, 37.05), (10.3, 36.8), (9.9, 37.3), (8.6, 36.9), (7.2, 37.1), (5.0, 36.7),
    (3.2, 36.8), (1.0, 36.5), (-0.4, 35.9), (-1.3, 35.3), (-2.2, 35.1), (-3.0, 35.3), (-4.4, 35.2),
    (-5.3, 35.9),
]  # fmt: skip
_BLACK_SEA = [
    (29.1, 41.2), (28.0, 41.6), (27.9, 42.5), (28.6, 43.5), (28.7, 44.3), (29.7, 45.1), (30.5, 46.2),
    (31.2, 46.6), (32.6, 46.1), (33.0, 45.9), (32.5, 45.4), (33.5, 44.5), (34.5, 44.7), (35.5, 45.1),
    (36.5, 45.3), (36.8, 45.0), (37.3, 44.7), (38.6, 44.3), (39.7, 43.6), (40.9, 43.0), (41.7, 41.9),
    (41.6, 41.5), (39.7, 41.0), (38.3, 40.9), (36.3, 41.3), (35.1, 42.0), (33.3, 42.0), (31.8, 41.5),
]  # fmt: skip
_AZOV = [(35.1, 45.7), (35.5, 46.4), (37.3, 47.0), (39.2, 47.2), (38.3, 46.4), (37.9, 45.8), (36.7, 45.4)]
_ATLANTIC = [
    (-20.0, 26.0), (-13.0, 26.0), (-12.0, 28.0), (-10.0, 29.3), (-9.7, 30.4), (-9.8, 31.4), (-9.2, 32.4),
    (-8.5, 33.3), (-7.6, 33.6), (-6.8, 34.1), (-6.2, 35.1), (-5.9, 35.8), (-5.6, 36.0), (-6.3, 36.5),
    (-7.0, 37.2), (-7.9, 37.0), (-8.9, 37.0), (-8.8, 38.0), (-9.5, 38.8), (-8.9, 40.2), (-8.7, 41.2),
    (-8.9, 42.2), (-9.3, 43.0), (-8.2, 43.6), (-7.0, 43.6), (-5.5, 43.6), (-3.5, 43.5), (-1.8, 43.4),
    (-1.3, 44.5), (-1.2, 45.8), (-2.2, 47.1), (-4.4, 47.8), (-4.8, 48.4), (-4.0, 52.0), (-20.0, 52.0),
]  # fmt: skip
# Islands large enough to show at 10 km pixels: land inside the sea polygons.
_ISLANDS = [
    [(12.4, 38.1), (13.4, 38.2), (15.6, 38.3), (15.1, 37.3), (15.1, 36.7), (14.3, 36.8), (12.9, 37.5), (12.4, 37.8)],
    [(8.4, 39.0), (9.0, 38.9), (9.6, 39.3), (9.8, 40.5), (9.5, 41.2), (8.8, 41.0), (8.2, 40.9), (8.4, 40.0)],
    [(8.6, 41.4), (9.2, 41.4), (9.5, 42.0), (9.4, 43.0), (9.0, 42.8), (8.6, 42.3)],
    [(23.5, 35.3), (24.3, 35.6), (26.3, 35.3), (26.2, 35.0), (24.7, 34.9), (23.5, 35.2)],
    [(32.3, 34.8), (32.4, 35.1), (33.0, 35.4), (34.6, 35.7), (34.0, 34.9), (33.0, 34.6)],
    [(2.3, 39.5), (3.2, 39.9), (3.5, 39.7), (3.2, 39.3), (2.7, 39.4)],
]  # fmt: skip

REGION_NAMES = {0: "land", 1: "mediterranean", 2: "black_sea", 3: "atlantic"}


def _inside(polygon: list[tuple[float, float]], points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Points ``[n, 2]`` inside the polygon; only those in its bounding box are tested (islands are small)."""
    vertices = np.asarray(polygon, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    candidates = np.flatnonzero(np.all((points >= low) & (points <= high), axis=1))
    inside = np.zeros(points.shape[0], dtype=bool)
    inside[candidates] = PolygonPath(vertices).contains_points(points[candidates])
    return inside


@dataclass(frozen=True)
class Geography:
    """Land/sea on a regular lon/lat raster.

    Attributes:
        lon, lat: raster cell centres, degrees, shapes ``[n_lon]`` and ``[n_lat]`` (lat increasing).
        region: int8 ``[n_lat, n_lon]``, codes in ``REGION_NAMES`` (0 = land).
        coast_distance_km: float32 ``[n_lat, n_lon]``, distance to the nearest cell of the other kind
            (sea cells: to land; land cells: to sea).
    """

    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    region: npt.NDArray[np.int8]
    coast_distance_km: npt.NDArray[np.float32]

    def _cells(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        i = np.clip(np.rint((lat_a - self.lat[0]) / RASTER_STEP_DEG), 0, self.lat.size - 1).astype(np.intp)
        j = np.clip(np.rint((lon_a - self.lon[0]) / RASTER_STEP_DEG), 0, self.lon.size - 1).astype(np.intp)
        return i, j

    def region_at(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.int8]:
        """Region code (see ``REGION_NAMES``) of the nearest raster cell; inputs broadcast."""
        i, j = self._cells(lon, lat)
        return self.region[i, j]

    def is_sea(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """True over any water body (Mediterranean, Black Sea, Atlantic)."""
        return self.region_at(lon, lat) > 0

    def coast_distance_at(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Distance in km from the point's cell to the coast (to land if at sea, to sea if on land)."""
        i, j = self._cells(lon, lat)
        return self.coast_distance_km[i, j]


@functools.lru_cache(maxsize=1)
def get_geography() -> Geography:
    """Rasterise the outlines once per process (about 0.2 s)."""
    lon = np.arange(RASTER_LON[0], RASTER_LON[1] + 1e-9, RASTER_STEP_DEG)
    lat = np.arange(RASTER_LAT[0], RASTER_LAT[1] + 1e-9, RASTER_STEP_DEG)
    lon2, lat2 = np.meshgrid(lon, lat)
    points = np.column_stack([lon2.ravel(), lat2.ravel()])
    region = np.zeros(points.shape[0], dtype=np.int8)
    for code, polygon in ((3, _ATLANTIC), (2, _BLACK_SEA), (2, _AZOV), (1, _MEDITERRANEAN)):
        region[_inside(polygon, points)] = code
    for island in _ISLANDS:
        region[_inside(island, points)] = 0
    region = region.reshape(lat2.shape)
    # distances on the raster in km: rows are RASTER_STEP_DEG of latitude, columns shrink with cos(lat);
    # one mid-basin factor is close enough for a margin of tens of km
    km_per_deg = np.pi * EARTH_RADIUS_KM / 180.0
    sampling = (RASTER_STEP_DEG * km_per_deg, RASTER_STEP_DEG * km_per_deg * np.cos(np.radians(38.0)))
    sea = region > 0
    to_land = ndimage.distance_transform_edt(sea, sampling=sampling)
    to_sea = ndimage.distance_transform_edt(~sea, sampling=sampling)
    distance = np.where(sea, to_land, to_sea).astype(np.float32)
    return Geography(lon=lon, lat=lat, region=region, coast_distance_km=distance)


def pixel_land_fraction(grid: SeviriGrid, smooth_px: float = 1.0) -> npt.NDArray[np.float32]:
    """Land (1) / sea (0) at every pixel centre of ``grid``, lightly smoothed: float32 ``[H, W]``.

    Pixels off the Earth's disc (never on the real grids) count as land.
    """
    y, x = np.mgrid[0 : grid.height, 0 : grid.width]
    lon, lat = grid.pixel_to_lonlat(x, y)
    land = ~get_geography().is_sea(np.nan_to_num(lon), np.nan_to_num(lat))
    land |= ~(np.isfinite(lon) & np.isfinite(lat))
    fraction = land.astype(np.float32)
    if smooth_px > 0:
        fraction = ndimage.gaussian_filter(fraction, smooth_px, mode="nearest")
    return fraction
