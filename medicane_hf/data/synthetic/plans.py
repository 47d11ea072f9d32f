"""What happens in the synthetic basin: Medicane tracks, look-alikes and their life cycles.

Everything here is drawn once from the basin's ``numpy.random.Generator``
before any frame is rendered, so a frame depends only on the plan and its own
index (which lets frames be rendered in any order, or in parallel, and still
come out byte-identical).

Medicane tracks are hourly random walks over the sea (heading wanders a few
degrees an hour, turns away from land and from other Medicanes, speed varies
smoothly inside the configured range). Positions are rounded to 4 decimals
*before* anything is rendered, so the image at every 5-minute frame is exactly
the linear interpolation of the hourly positions written to tracks.csv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from medicane_hf.data.geo import EARTH_RADIUS_KM, SeviriGrid, haversine_km
from medicane_hf.data.synthetic.config import SyntheticConfig
from medicane_hf.data.synthetic.geography import Geography

__all__ = [
    "BasinPlan",
    "BlobPlan",
    "CommaPlan",
    "FrontPlan",
    "PlanningError",
    "VortexPlan",
    "count_for",
    "destination",
    "life_cycle",
    "make_plan",
]

FloatArray = npt.NDArray[np.float64]
KM_PER_DEG_LAT = np.pi * EARTH_RADIUS_KM / 180.0
POSITION_DECIMALS = 4
STORM_NAMES = (
    "Aiolos", "Boreas", "Circe", "Dione", "Eurus", "Gaia", "Helios", "Iris", "Kalypso", "Leto",
    "Medea", "Nereus", "Orion", "Pontus", "Rhea", "Selene", "Thalia", "Zephyros",
)  # fmt: skip


class PlanningError(RuntimeError):
    """The basin cannot hold the requested storms (too many for the span, or no sea left)."""


def smoothstep(x: npt.ArrayLike) -> FloatArray:
    """0 below 0, 1 above 1, cubic in between (zero slope at both ends)."""
    c = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return c * c * (3.0 - 2.0 * c)


def life_cycle(t_h: npt.ArrayLike, duration_h: float, growth_h: float, decay_h: float) -> FloatArray:
    """Intensity 0..1 at hours ``t_h`` after genesis: smooth growth, plateau, smooth decay; 0 outside."""
    t = np.asarray(t_h, dtype=np.float64)
    rise = smoothstep(t / max(growth_h, 1e-6))
    fall = smoothstep((duration_h - t) / max(decay_h, 1e-6))
    inside = (t >= 0) & (t <= duration_h)
    return np.where(inside, np.minimum(rise, fall), 0.0)


def phase_of(
    t_h: npt.ArrayLike, duration_h: float, growth_h: float, decay_h: float
) -> npt.NDArray[np.object_]:
    """ "growth" / "mature" / "decay" for hours after genesis (mature includes both ends)."""
    t = np.asarray(t_h, dtype=np.float64)
    phase = np.where(t < growth_h, "growth", np.where(t > duration_h - decay_h, "decay", "mature"))
    return phase.astype(object)


def destination(lon: float, lat: float, bearing_deg: float, distance_km: float) -> tuple[float, float]:
    """Point ``distance_km`` from (lon, lat) along the great circle with ``bearing_deg`` (clockwise from north)."""
    lat1, lon1, brg = np.radians(lat), np.radians(lon), np.radians(bearing_deg)
    delta = distance_km / EARTH_RADIUS_KM
    lat2 = np.arcsin(np.sin(lat1) * np.cos(delta) + np.cos(lat1) * np.sin(delta) * np.cos(brg))
    lon2 = lon1 + np.arctan2(
        np.sin(brg) * np.sin(delta) * np.cos(lat1), np.cos(delta) - np.sin(lat1) * np.sin(lat2)
    )
    return float(np.degrees(lon2)), float(np.degrees(lat2))


def _wrap_deg(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


@dataclass
class VortexPlan:
    """A spiral vortex with an eye: a Medicane (over sea, in tracks.csv) or a land vortex (look-alike).

    Hourly positions ``lon``/``lat`` (degrees, ``[n_hours]``) from ``start`` (on the hour); the
    storm lives ``duration_h = n_hours - 1`` hours; the window is the mature part between
    ``growth_h`` and ``duration_h - decay_h``.
    """

    object_id: str
    name: str
    kind: str
    start: pd.Timestamp
    lon: FloatArray
    lat: FloatArray
    growth_h: int
    decay_h: int
    peak_intensity: float
    radius_km: float
    eye_radius_km: float
    rotation_deg_per_h: float
    arms: int
    pitch: float
    band_phase: float
    asymmetry: tuple[float, float, float, float]

    @property
    def duration_h(self) -> int:
        return int(self.lon.size - 1)

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(hours=self.duration_h)

    @property
    def window_start(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(hours=self.growth_h)

    @property
    def window_end(self) -> pd.Timestamp:
        return self.end - pd.Timedelta(hours=self.decay_h)

    @property
    def hours(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.lon.size, freq="h")

    def intensity(self, t_h: npt.ArrayLike) -> FloatArray:
        """Intensity (0..peak) at hours after ``start``."""
        return self.peak_intensity * life_cycle(t_h, self.duration_h, self.growth_h, self.decay_h)

    def radius_at(self, t_h: npt.ArrayLike) -> FloatArray:
        """Outer cloud radius in km: grows from 60 % to 100 % of ``radius_km`` with intensity."""
        return self.radius_km * (0.6 + 0.4 * life_cycle(t_h, self.duration_h, self.growth_h, self.decay_h))

    def position_at(self, t_h: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Linear interpolation of the hourly lon/lat (no extrapolation: clamps to the ends)."""
        hours = np.arange(self.lon.size, dtype=np.float64)
        t = np.asarray(t_h, dtype=np.float64)
        return np.interp(t, hours, self.lon), np.interp(t, hours, self.lat)


@dataclass
class _DriftingPlan:
    """A look-alike that drifts at a constant velocity from (lon0, lat0) over its life."""

    object_id: str
    start: pd.Timestamp
    duration_h: float
    lon0: float
    lat0: float
    u_kmh: float
    v_kmh: float
    radius_km: float

    def position_at(self, t_h: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        return _drift(self.lon0, self.lat0, self.u_kmh, self.v_kmh, t_h)


@dataclass
class BlobPlan(_DriftingPlan):
    """A convective cluster: 1-3 bright blobs drifting together, short-lived, no eye."""

    sub_offsets_km: FloatArray  # [n, 2] (east, north)
    sub_radii: FloatArray  # [n] fraction of radius_km

    def intensity(self, t_h: npt.ArrayLike) -> FloatArray:
        return life_cycle(t_h, self.duration_h, 0.35 * self.duration_h, 0.45 * self.duration_h)


@dataclass
class CommaPlan(_DriftingPlan):
    """An extratropical comma cloud: big spiral head, trailing cold-front tail, dry slot, no eye."""

    orientation_deg: float

    def intensity(self, t_h: npt.ArrayLike) -> FloatArray:
        return life_cycle(t_h, self.duration_h, 0.3 * self.duration_h, 0.3 * self.duration_h)


@dataclass
class FrontPlan:
    """A frontal cloud band: a quadratic Bezier curve (3 control points, lon/lat) drifting as a whole."""

    object_id: str
    start: pd.Timestamp
    duration_h: float
    control_lon: FloatArray  # [3]
    control_lat: FloatArray  # [3]
    u_kmh: float
    v_kmh: float
    width_km: float
    amplitude: float

    def intensity(self, t_h: npt.ArrayLike) -> FloatArray:
        return self.amplitude * life_cycle(t_h, self.duration_h, 0.3 * self.duration_h, 0.3 * self.duration_h)

    def position_at(self, t_h: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Mid control point (the band's reference position)."""
        return _drift(self.control_lon[1], self.control_lat[1], self.u_kmh, self.v_kmh, t_h)


def _drift(
    lon0: float, lat0: float, u_kmh: float, v_kmh: float, t_h: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(t_h, dtype=np.float64)
    lat = lat0 + v_kmh * t / KM_PER_DEG_LAT
    lon = lon0 + u_kmh * t / (KM_PER_DEG_LAT * np.cos(np.radians(lat0)))
    return lon, lat


@dataclass
class BasinPlan:
    """Every object of one synthetic basin, drawn before rendering."""

    medicanes: list[VortexPlan] = field(default_factory=list)
    land_vortices: list[VortexPlan] = field(default_factory=list)
    convection: list[BlobPlan] = field(default_factory=list)
    commas: list[CommaPlan] = field(default_factory=list)
    fronts: list[FrontPlan] = field(default_factory=list)


# ---- track walks ------------------------------------------------------------------------------


PointTest = Callable[[float, float, int], bool]


def _walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    speeds_kmh: FloatArray,
    turn_deg: float,
    ok: PointTest,
    hour0: int,
) -> FloatArray | None:
    """Hourly positions ``[len(speeds) + 1, 2]`` (lon, lat) from ``start``; None when boxed in.

    The heading wanders (normal steps of ``turn_deg``), relaxes towards a preferred bearing, and
    when the next point fails ``ok(lon, lat, absolute_hour)`` it turns, trying the smaller turns
    first, alternating sides.
    """
    heading = float(rng.uniform(0.0, 360.0))
    preferred = float(rng.uniform(0.0, 360.0))
    side = 1.0 if rng.random() < 0.5 else -1.0
    points = [start]
    lon, lat = start
    for step, speed in enumerate(speeds_kmh):
        heading += 0.08 * _wrap_deg(preferred - heading) + float(rng.normal(0.0, turn_deg))
        for turn in (0, 20, -20, 40, -40, 60, -60, 90, -90, 120, -120, 150, -150, 180):
            candidate = heading + side * turn
            nlon, nlat = destination(lon, lat, candidate, float(speed))
            nlon, nlat = round(nlon, POSITION_DECIMALS), round(nlat, POSITION_DECIMALS)
            if ok(nlon, nlat, hour0 + step + 1):
                heading, lon, lat = candidate, nlon, nlat
                break
        else:
            return None
        points.append((lon, lat))
    return np.asarray(points, dtype=np.float64)


def _speeds(rng: np.random.Generator, n: int, speed_range: tuple[float, float]) -> FloatArray:
    """``n`` hourly speeds (km/h): a per-storm base varied by a smooth AR(1) factor, kept 1 km/h inside the range."""
    low, high = float(speed_range[0]) + 1.0, float(speed_range[1]) - 1.0
    base = rng.uniform(low + 0.15 * (high - low), low + 0.55 * (high - low))
    anomaly = np.zeros(n)
    for i in range(1, n):
        anomaly[i] = 0.9 * anomaly[i - 1] + rng.normal(0.0, 0.1)
    return np.clip(base * np.exp(anomaly), low, high)


class _Occupancy:
    """Positions of already-planned vortices per absolute hour, for the separation rule."""

    def __init__(self) -> None:
        self._by_hour: dict[int, list[tuple[float, float]]] = {}

    def add(self, hour0: int, track: FloatArray) -> None:
        for k, (lon, lat) in enumerate(track):
            self._by_hour.setdefault(hour0 + k, []).append((float(lon), float(lat)))

    def clear_of(self, lon: float, lat: float, hour: int, min_km: float) -> bool:
        others = self._by_hour.get(hour)
        if not others:
            return True
        o = np.asarray(others)
        return bool(np.all(haversine_km(lon, lat, o[:, 0], o[:, 1]) >= min_km))


def _on_grid_test(grid: SeviriGrid, margin_px: float) -> Callable[[float, float], bool]:
    def inside(lon: float, lat: float) -> bool:
        x, y = grid.lonlat_to_pixel(lon, lat)
        return bool(
            margin_px <= x <= grid.width - 1 - margin_px and margin_px <= y <= grid.height - 1 - margin_px
        )

    return inside


def _genesis_points(
    geo: Geography, want_sea: bool, margin_km: float, box: tuple[float, float, float, float]
) -> FloatArray:
    """Raster cells (lon, lat) ``[n, 2]`` that may start a track."""
    lon2, lat2 = np.meshgrid(geo.lon, geo.lat)
    kind_ok = (geo.region == 1) if want_sea else (geo.region == 0)
    inside = (lon2 >= box[0]) & (lon2 <= box[1]) & (lat2 >= box[2]) & (lat2 <= box[3])
    cells = kind_ok & inside & (geo.coast_distance_km >= margin_km)
    return np.column_stack([lon2[cells], lat2[cells]])


def _plan_vortex(
    rng: np.random.Generator,
    config: SyntheticConfig,
    *,
    object_id: str,
    name: str,
    kind: str,
    basin_start: pd.Timestamp,
    span: tuple[int, int],
    candidates: FloatArray,
    ok: PointTest,
    duration_range: tuple[float, float],
    peak: float,
    attempts: int = 300,
) -> tuple[VortexPlan, int] | None:
    """One vortex whose every hourly point passes ``ok``; None after ``attempts`` failures."""
    for _ in range(attempts):
        duration = int(round(rng.uniform(*duration_range)))
        duration = max(4, min(duration, span[1] - span[0]))
        hour0 = int(rng.integers(span[0], span[1] - duration + 1))
        lon0, lat0 = candidates[rng.integers(0, len(candidates))]
        lon0, lat0 = round(float(lon0), POSITION_DECIMALS), round(float(lat0), POSITION_DECIMALS)
        if not ok(lon0, lat0, hour0):
            continue
        track = _walk(
            rng,
            (lon0, lat0),
            _speeds(rng, duration, config.medicane_speed_kmh),
            config.track_turn_deg_per_h,
            ok,
            hour0,
        )
        if track is None:
            continue
        growth = max(1, int(round(duration * rng.uniform(*config.medicane_growth_fraction))))
        decay = max(1, int(round(duration * rng.uniform(*config.medicane_decay_fraction))))
        plan = VortexPlan(
            object_id=object_id,
            name=name,
            kind=kind,
            start=basin_start + pd.Timedelta(hours=hour0),
            lon=track[:, 0],
            lat=track[:, 1],
            growth_h=growth,
            decay_h=decay,
            peak_intensity=peak,
            radius_km=float(rng.uniform(*config.medicane_radius_km)),
            eye_radius_km=float(rng.uniform(*config.eye_radius_km)),
            rotation_deg_per_h=float(rng.uniform(*config.medicane_rotation_deg_per_h)),
            arms=int(rng.integers(config.spiral_arms[0], config.spiral_arms[1] + 1)),
            pitch=float(rng.uniform(*config.spiral_pitch)),
            band_phase=float(rng.uniform(0, 2 * np.pi)),
            asymmetry=(
                float(rng.uniform(0.05, 0.15)),
                float(rng.uniform(0, 2 * np.pi)),
                float(rng.uniform(0.02, 0.08)),
                float(rng.uniform(0, 2 * np.pi)),
            ),
        )
        return plan, hour0
    return None


def count_for(rate_per_day: float, days: float) -> int:
    """rate x days rounded half up (Python's round would send 2.5 to 2)."""
    return int(np.floor(rate_per_day * days + 0.5))


def storm_episodes(
    rng: np.random.Generator, config: SyntheticConfig, total_hours: int
) -> list[tuple[int, int]]:
    """Active periods ``(first hour, last hour)`` after the basin start, separated by quiet gaps.

    Medicanes come in episodes, as in a real archive; storms of different episodes never
    overlap in time, so a split by storm groups (storms overlapping in time share a split) has
    several groups to distribute even over a few days. A tail shorter than 6 h stays quiet.
    """
    episodes: list[tuple[int, int]] = []
    hour = 0
    while hour < total_hours - 1:
        end = min(total_hours - 1, hour + int(round(rng.uniform(*config.episode_hours))))
        if end - hour >= 6 or not episodes:
            episodes.append((hour, end))
        hour = end + 1 + int(round(rng.uniform(*config.quiet_hours)))
    return episodes


def _name_in_order(storms: list[VortexPlan]) -> None:
    """Number and name storms by genesis time (syn001 forms first), like a season's names."""
    storms.sort(key=lambda p: (p.start, p.object_id))
    for k, p in enumerate(storms):
        p.object_id = f"syn{k + 1:03d}"
        p.name = STORM_NAMES[k % len(STORM_NAMES)] + (
            "" if k < len(STORM_NAMES) else f"-{k // len(STORM_NAMES) + 1}"
        )


def plan_vortices(
    rng: np.random.Generator,
    config: SyntheticConfig,
    grid: SeviriGrid,
    geo: Geography,
    basin_start: pd.Timestamp,
    days: float,
) -> tuple[list[VortexPlan], list[VortexPlan]]:
    """Medicanes (over sea, separated) and land vortices (over land, clear of Medicanes)."""
    total_hours = int(round(days * 24))
    if total_hours < 6:
        raise PlanningError(f"a synthetic basin needs at least 6 hours, got {days} days")
    occupancy = _Occupancy()
    on_grid = _on_grid_test(grid, config.track_margin_px)

    def over_sea(lon: float, lat: float, hour: int) -> bool:
        return (
            int(geo.region_at(lon, lat)) == 1
            and float(geo.coast_distance_at(lon, lat)) >= config.coast_margin_km
            and on_grid(lon, lat)
            and occupancy.clear_of(lon, lat, hour, config.min_separation_km)
        )

    def over_land(lon: float, lat: float, hour: int) -> bool:
        return (
            int(geo.region_at(lon, lat)) == 0
            and float(geo.coast_distance_at(lon, lat)) >= config.coast_margin_km
            and on_grid(lon, lat)
            and occupancy.clear_of(lon, lat, hour, config.min_separation_km)
        )

    sea_cells = _genesis_points(geo, True, config.coast_margin_km, config.genesis_box)
    n_medicanes = max(1, count_for(config.medicanes_per_day, days))
    episodes = storm_episodes(rng, config, total_hours)
    # every episode gets a storm before any gets a second one
    episode_order = rng.permutation(len(episodes))
    medicanes: list[VortexPlan] = []
    for k in range(n_medicanes):
        result = _plan_vortex(
            rng,
            config,
            object_id=f"plan{k + 1:03d}",  # renamed by genesis time below
            name="",
            kind="medicane",
            basin_start=basin_start,
            span=episodes[episode_order[k % len(episodes)]],
            candidates=sea_cells,
            ok=over_sea,
            duration_range=config.medicane_duration_h,
            peak=1.0,
        )
        if result is None:
            raise PlanningError(
                f"could not place Medicane {k + 1} of {n_medicanes} over the sea at least "
                f"{config.min_separation_km} km from the others; lower medicanes_per_day or min_separation_km"
            )
        medicanes.append(result[0])
        occupancy.add(result[1], np.column_stack([result[0].lon, result[0].lat]))
    _name_in_order(medicanes)

    land_cells = _genesis_points(geo, False, config.coast_margin_km, config.land_genesis_box)
    land_vortices: list[VortexPlan] = []
    for k in range(count_for(config.land_vortices_per_day, days)):
        result = _plan_vortex(
            rng,
            config,
            object_id=f"land{k + 1:03d}",
            name="",
            kind="land_vortex",
            basin_start=basin_start,
            span=(0, total_hours - 1),
            candidates=land_cells,
            ok=over_land,
            duration_range=config.land_vortex_duration_h,
            peak=float(rng.uniform(*config.land_vortex_intensity)),
            attempts=50,
        )
        if result is not None:  # a look-alike that does not fit is simply left out
            land_vortices.append(result[0])
            occupancy.add(result[1], np.column_stack([result[0].lon, result[0].lat]))
    return medicanes, land_vortices


# ---- look-alikes without tracks -------------------------------------------------------------


def _start_time(
    rng: np.random.Generator, basin_start: pd.Timestamp, total_h: float, duration_h: float
) -> pd.Timestamp:
    """Uniform start, so that some objects are already alive at the first frame; on a 5-minute step."""
    minutes = rng.uniform(-0.5 * duration_h, total_h - 0.5 * duration_h) * 60.0
    return basin_start + pd.Timedelta(minutes=5 * int(np.floor(minutes / 5)))


def plan_convection(
    rng: np.random.Generator, config: SyntheticConfig, basin_start: pd.Timestamp, days: float
) -> list[BlobPlan]:
    total_h = days * 24
    plans = []
    for k in range(count_for(config.convection_per_day, days)):
        duration = float(rng.uniform(*config.convection_duration_h))
        n_sub = int(rng.integers(1, 4))
        plans.append(
            BlobPlan(
                object_id=f"conv{k + 1:04d}",
                start=_start_time(rng, basin_start, total_h, duration),
                duration_h=duration,
                lon0=float(rng.uniform(-8.0, 42.0)),
                lat0=float(rng.uniform(31.0, 46.0)),
                u_kmh=float(rng.normal(config.convection_drift_kmh[0], config.convection_drift_kmh[2])),
                v_kmh=float(rng.normal(config.convection_drift_kmh[1], config.convection_drift_kmh[2])),
                radius_km=float(rng.uniform(*config.convection_radius_km)),
                sub_offsets_km=np.vstack([[0.0, 0.0], rng.normal(0.0, 25.0, size=(n_sub - 1, 2))]),
                sub_radii=np.concatenate([[1.0], rng.uniform(0.4, 0.8, size=n_sub - 1)]),
            )
        )
    return plans


def plan_commas(
    rng: np.random.Generator, config: SyntheticConfig, basin_start: pd.Timestamp, days: float
) -> list[CommaPlan]:
    total_h = days * 24
    plans = []
    for k in range(count_for(config.comma_clouds_per_day, days)):
        duration = float(rng.uniform(*config.comma_duration_h))
        speed = float(rng.uniform(*config.comma_speed_kmh))
        bearing = np.radians(rng.uniform(50.0, 110.0))
        plans.append(
            CommaPlan(
                object_id=f"comma{k + 1:03d}",
                start=_start_time(rng, basin_start, total_h, duration),
                duration_h=duration,
                lon0=float(rng.uniform(-12.0, 28.0)),
                lat0=float(rng.uniform(39.0, 47.0)),
                u_kmh=speed * float(np.sin(bearing)),
                v_kmh=speed * float(np.cos(bearing)),
                radius_km=float(rng.uniform(*config.comma_radius_km)),
                orientation_deg=float(rng.uniform(-30.0, 30.0)),
            )
        )
    return plans


def plan_fronts(
    rng: np.random.Generator, config: SyntheticConfig, basin_start: pd.Timestamp, days: float
) -> list[FrontPlan]:
    total_h = days * 24
    plans = []
    for k in range(count_for(config.fronts_per_day, days)):
        duration = float(rng.uniform(*config.front_duration_h))
        length = float(rng.uniform(*config.front_length_km))
        axis = float(rng.uniform(20.0, 70.0))  # bearing of the band, SW-NE as most cold fronts
        mid_lon, mid_lat = float(rng.uniform(-6.0, 38.0)), float(rng.uniform(34.0, 46.0))
        a_lon, a_lat = destination(mid_lon, mid_lat, axis + 180.0, length / 2)
        b_lon, b_lat = destination(mid_lon, mid_lat, axis, length / 2)
        bow_lon, bow_lat = destination(mid_lon, mid_lat, axis + 90.0, float(rng.normal(0.0, 0.2)) * length)
        speed = float(rng.uniform(*config.front_speed_kmh))
        bearing = np.radians(rng.uniform(80.0, 130.0))
        plans.append(
            FrontPlan(
                object_id=f"front{k + 1:03d}",
                start=_start_time(rng, basin_start, total_h, duration),
                duration_h=duration,
                control_lon=np.array([a_lon, bow_lon, b_lon]),
                control_lat=np.array([a_lat, bow_lat, b_lat]),
                u_kmh=speed * float(np.sin(bearing)),
                v_kmh=speed * float(np.cos(bearing)),
                width_km=float(rng.uniform(*config.front_width_km)),
                amplitude=float(rng.uniform(0.6, 0.9)),
            )
        )
    return plans


def make_plan(
    rng: np.random.Generator,
    config: SyntheticConfig,
    grid: SeviriGrid,
    geo: Geography,
    basin_start: pd.Timestamp,
    days: float,
) -> BasinPlan:
    """Draw every object of the basin, in a fixed order so a seed always gives the same plan."""
    medicanes, land_vortices = plan_vortices(rng, config, grid, geo, basin_start, days)
    return BasinPlan(
        medicanes=medicanes,
        land_vortices=land_vortices,
        convection=plan_convection(rng, config, basin_start, days),
        commas=plan_commas(rng, config, basin_start, days),
        fronts=plan_fronts(rng, config, basin_start, days),
    )
