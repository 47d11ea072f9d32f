"""The SEVIRI pixel grid: lon/lat <-> pixel, pixel size on the ground, haversine distances.

The image is a rectangle in geostationary projection space (``proj=geos``): its
lower-left pixel centre is the projection of ``lower_left`` (lon, lat) and its
upper-right pixel centre the projection of ``upper_right``; pixel centres are
evenly spaced in projection metres with both corners included
(spacing = extent / (N - 1)). The other two corners are therefore *not* on the
lon/lat box (with the defaults: upper-left about 12.3W 46.9N, lower-right about
35.9E 30.4N), and a pixel covers 3-6 km on the ground, more to the north and east.

Pixel coordinates follow docs/DESIGN.md: ``x`` is the 0-based column from the
west edge, ``y`` the 0-based row from the top (north) edge, and a pixel centre
sits at integer values. The old system counted rows from the bottom on the way
in and from the top on the way out (a one-row error) and clamped points east of
the grid onto the last column; here a point off the grid is reported as such.

Every function is vectorised over numpy arrays (inputs broadcast together) and
accepts scalars. Points the satellite cannot see give NaN (and are off the grid)
rather than an exception.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

__all__ = ["EARTH_RADIUS_KM", "SeviriGrid", "haversine_km"]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG) used for every distance in the project, km."""

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


def haversine_km(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle distance in km on a sphere of radius ``EARTH_RADIUS_KM``.

    Args:
        lon1, lat1, lon2, lat2: degrees; any shapes that broadcast together.

    Returns:
        float64 array of the broadcast shape (0-d for scalar input); NaN where an input is NaN.
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    h = np.sin((lat2 - lat1) / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    # clip guards against h a hair above 1 from rounding for antipodal points
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


@dataclass(frozen=True)
class _Projector:
    """Forward (lon/lat -> geos metres) and inverse transformers for one set of projection parameters."""

    forward: Transformer
    inverse: Transformer
    proj_string: str


@functools.lru_cache(maxsize=32)
def _projector(lon_0: float, h: float, a: float, b: float, sweep: str, pid: int) -> _Projector:
    """Build the transformers once per parameter set (and per process: pyproj objects do not survive fork).

    The geodetic side is the projection's own ellipsoid, so lat/lon are geodetic on
    (a, b) with no datum shift, which is what ``Proj(...)(lon, lat)`` gives.
    """
    del pid  # only part of the cache key
    proj_string = f"+proj=geos +h={h!r} +lon_0={lon_0!r} +a={a!r} +b={b!r} +sweep={sweep} +units=m +no_defs"
    crs = CRS.from_proj4(proj_string)
    geodetic = crs.geodetic_crs
    return _Projector(
        forward=Transformer.from_crs(geodetic, crs, always_xy=True),
        inverse=Transformer.from_crs(crs, geodetic, always_xy=True),
        proj_string=proj_string,
    )


def _finite_or_nan(values: FloatArray) -> FloatArray:
    """pyproj marks points it cannot project with inf; the grid reports them as NaN."""
    return np.where(np.isfinite(values), values, np.nan)


@dataclass(frozen=True)
class SeviriGrid:
    """A north-up pixel grid on the geostationary SEVIRI projection. Every number is a setting.

    Attributes:
        width, height: grid size in pixels (W columns x H rows), each at least 2.
        lower_left: (lon, lat) in degrees of the centre of pixel (x=0, y=height-1).
        upper_right: (lon, lat) in degrees of the centre of pixel (x=width-1, y=0).
        lon_0: sub-satellite longitude, degrees.
        satellite_height: height of the satellite above the ellipsoid, m.
        a, b: semi-major and semi-minor axes of the ellipsoid, m.
        sweep: sweep-angle axis of the instrument, "x" or "y" (SEVIRI: "y").
    """

    width: int = 1290
    height: int = 420
    lower_left: tuple[float, float] = (-7.0, 30.0)
    upper_right: tuple[float, float] = (46.0, 48.0)
    lon_0: float = 9.5
    satellite_height: float = 35785831.0
    a: float = 6378137.0
    b: float = 6356752.3142
    sweep: str = "y"

    def __post_init__(self) -> None:
        # from_dict and JSON give lists; keep tuples so the grid stays hashable and comparable
        object.__setattr__(self, "lower_left", tuple(float(v) for v in self.lower_left))
        object.__setattr__(self, "upper_right", tuple(float(v) for v in self.upper_right))
        self._validate()
        # 1290.0 from a hand-written JSON passes validation; store it as the int it is
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def _validate(self) -> None:
        if (
            int(self.width) != self.width
            or int(self.height) != self.height
            or min(self.width, self.height) < 2
        ):
            raise ValueError(
                f"SeviriGrid: width and height must be integers >= 2, got {self.width} x {self.height}"
            )
        if len(self.lower_left) != 2 or len(self.upper_right) != 2:
            raise ValueError(
                f"SeviriGrid: corners must be (lon, lat) pairs, got {self.lower_left}, {self.upper_right}"
            )
        if self.sweep not in ("x", "y"):
            raise ValueError(f"SeviriGrid: sweep must be 'x' or 'y', got {self.sweep!r}")
        if not (self.a >= self.b > 0 and self.satellite_height > 0):
            raise ValueError(
                f"SeviriGrid: need a >= b > 0 and satellite_height > 0, got a={self.a}, b={self.b}, "
                f"satellite_height={self.satellite_height}"
            )
        x_min, y_min, x_max, y_max = self.extent_m
        if not np.all(np.isfinite([x_min, y_min, x_max, y_max])):
            raise ValueError(
                f"SeviriGrid: a corner is not visible from the satellite at lon_0={self.lon_0}: "
                f"lower_left={self.lower_left}, upper_right={self.upper_right}"
            )
        if not (x_max > x_min and y_max > y_min):
            raise ValueError(
                f"SeviriGrid: upper_right {self.upper_right} must project east and north of lower_left {self.lower_left}"
            )

    # ---- projection space -------------------------------------------------------------------

    @property
    def _proj_params(self) -> tuple[float, float, float, float, str]:
        return float(self.lon_0), float(self.satellite_height), float(self.a), float(self.b), self.sweep

    @property
    def _proj(self) -> _Projector:
        return _projector(*self._proj_params, os.getpid())

    @property
    def proj_string(self) -> str:
        """PROJ string of the projection (for pyproj, cartopy, GDAL)."""
        return self._proj.proj_string

    @property
    def extent_m(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) in projection metres of the corner pixel centres."""
        return _extent(self.lower_left, self.upper_right, self._proj_params)

    @property
    def spacing_m(self) -> tuple[float, float]:
        """(dx, dy): distance between neighbouring pixel centres in projection metres (about 3000 m)."""
        x_min, y_min, x_max, y_max = self.extent_m
        return (x_max - x_min) / (self.width - 1), (y_max - y_min) / (self.height - 1)

    def lonlat_to_projection(self, lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """lon/lat (degrees) -> geos projection metres; NaN where the satellite cannot see the point."""
        lon_a, lat_a = np.broadcast_arrays(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
        xm, ym = self._proj.forward.transform(lon_a, lat_a, errcheck=False)
        return _finite_or_nan(np.asarray(xm, dtype=np.float64)), _finite_or_nan(
            np.asarray(ym, dtype=np.float64)
        )

    # ---- lon/lat <-> pixel ------------------------------------------------------------------

    def lonlat_to_pixel(self, lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """lon/lat (degrees) -> float pixel (x, y) (0-based, row 0 at the top).

        Returns:
            x, y: float64 arrays of the broadcast input shape. Not clamped: a point off the
            grid gets coordinates outside [0, W-1] x [0, H-1]; an invisible point gets NaN.
        """
        xm, ym = self.lonlat_to_projection(lon, lat)
        x_min, _, _, y_max = self.extent_m
        dx, dy = self.spacing_m
        return (xm - x_min) / dx, (y_max - ym) / dy

    def lonlat_to_pixel_rounded(
        self, lon: ArrayLike, lat: ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """lon/lat -> the pixel whose centre is nearest in projection space, and an on-grid flag.

        Rounds half up (x = 12.5 -> 13) so the rule does not depend on parity. Never clamps:
        a point off the grid keeps its (out-of-range) pixel and ``on_grid`` False. A point the
        satellite cannot see gets x = y = -1 and ``on_grid`` False: always check the flag.

        Returns:
            x, y: int64 arrays; on_grid: bool array; all of the broadcast input shape.
        """
        xf, yf = self.lonlat_to_pixel(lon, lat)
        inside = self.on_grid(xf, yf)
        visible = np.isfinite(xf) & np.isfinite(yf)
        xi = np.where(visible, np.floor(np.where(visible, xf, 0.0) + 0.5), -1).astype(np.int64)
        yi = np.where(visible, np.floor(np.where(visible, yf, 0.0) + 0.5), -1).astype(np.int64)
        # the closed edge x = W - 0.5 rounds up to W; keep such on-grid points on the last pixel
        xi = np.where(inside, np.clip(xi, 0, self.width - 1), xi)
        yi = np.where(inside, np.clip(yi, 0, self.height - 1), yi)
        return xi, yi, inside

    def pixel_to_lonlat(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Float pixel (x, y) -> lon/lat in degrees; exact inverse of ``lonlat_to_pixel``.

        Pixels outside the grid are converted too (the mapping is linear in projection
        space); pixels that fall off the Earth's disc give NaN.
        """
        x_a, y_a = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        x_min, _, _, y_max = self.extent_m
        dx, dy = self.spacing_m
        lon, lat = self._proj.inverse.transform(x_min + x_a * dx, y_max - y_a * dy, errcheck=False)
        return _finite_or_nan(np.asarray(lon, dtype=np.float64)), _finite_or_nan(
            np.asarray(lat, dtype=np.float64)
        )

    def on_grid(self, x: ArrayLike, y: ArrayLike) -> npt.NDArray[np.bool_]:
        """True where float pixel (x, y) lies inside [-0.5, W-0.5] x [-0.5, H-0.5] (False for NaN)."""
        x_a = np.asarray(x, dtype=np.float64)
        y_a = np.asarray(y, dtype=np.float64)
        return (x_a >= -0.5) & (x_a <= self.width - 0.5) & (y_a >= -0.5) & (y_a <= self.height - 0.5)

    def pixel_size_km(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Ground size of the pixel at (x, y), km.

        Returns:
            dx_km: haversine distance from (x, y) to the next pixel east (x + 1, y);
            dy_km: haversine distance from (x, y) to the next pixel south (x, y + 1).
            float64 arrays of the broadcast input shape.
        """
        x_a, y_a = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        lon, lat = self.pixel_to_lonlat(x_a, y_a)
        lon_e, lat_e = self.pixel_to_lonlat(x_a + 1.0, y_a)
        lon_s, lat_s = self.pixel_to_lonlat(x_a, y_a + 1.0)
        return haversine_km(lon, lat, lon_e, lat_e), haversine_km(lon, lat, lon_s, lat_s)

    # ---- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every setting (corners as [lon, lat] lists)."""
        d = asdict(self)
        d["lower_left"] = list(self.lower_left)
        d["upper_right"] = list(self.upper_right)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeviriGrid:
        """Inverse of ``to_dict``; missing keys take the defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"SeviriGrid.from_dict: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)


@functools.lru_cache(maxsize=64)
def _extent(
    lower_left: tuple[float, float],
    upper_right: tuple[float, float],
    proj_params: tuple[float, float, float, float, str],
) -> tuple[float, float, float, float]:
    """Projected corners, cached because every conversion needs them."""
    proj = _projector(*proj_params, os.getpid())
    (x_min, x_max), (y_min, y_max) = proj.forward.transform(
        [lower_left[0], upper_right[0]], [lower_left[1], upper_right[1]], errcheck=False
    )
    return float(x_min), float(y_min), float(x_max), float(y_max)
