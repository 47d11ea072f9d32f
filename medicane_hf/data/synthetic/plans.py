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

With the realism settings on (the ``realistic`` preset) each vortex also gets a
:class:`VortexRealism`, drawn after everything else: the position tracks.csv gives
then differs from the drawn one by a slowly varying offset, and the eye, the
cloud shield and the storm's strength vary as described there.
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
    "VortexRealism",
    "ar1_series",
    "count_for",
    "destination",
    "life_cycle",
    "make_plan",
    "plan_realism",
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
class VortexRealism:
    """What the realism settings change about one vortex (``VortexPlan.realism``; None = drawn as before).

    Hourly arrays are ``[n_hours]``, aligned with ``VortexPlan.lon``.

    Attributes:
        label_lon, label_lat: the position tracks.csv gives (degrees, rounded like the track); the
            drawn centre stays ``VortexPlan.lon/lat``. For look-alikes (never in tracks.csv) they
            are still drawn, so that switching the label error does not reshuffle the rest.
        eye_fill: share of the eye filled by cloud, 0 (clear) .. 1 (filled), hourly; >= 0.5 in
            ``eye_fill_fraction`` of the hours the eye could show.
        eyeless: a weak Medicane that never shows an eye.
        shield_offset_km: distance of the cloud shield's centre from the vortex centre, km.
        shield_angle_deg: direction of that offset at genesis, degrees counter-clockwise from east;
            the long axis of an elongated shield points the same way.
        shield_turn_deg_per_h: how fast offset and axis turn, degrees per hour (counter-clockwise > 0).
        shield_elongation: axis ratio of the shield (>= 1; its area is kept).
    """

    label_lon: FloatArray
    label_lat: FloatArray
    eye_fill: FloatArray
    eyeless: bool
    shield_offset_km: float
    shield_angle_deg: float
    shield_turn_deg_per_h: float
    shield_elongation: float


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
    realism: VortexRealism | None = None

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

    @property
    def label_lon(self) -> FloatArray:
        """Hourly longitude written to tracks.csv: the drawn one unless a label error is planned."""
        return self.lon if self.realism is None else self.realism.label_lon

    @property
    def label_lat(self) -> FloatArray:
        """Hourly latitude written to tracks.csv (see ``label_lon``)."""
        return self.lat if self.realism is None else self.realism.label_lat


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
    sea_vortices: list[VortexPlan] = field(default_factory=list)

    @property
    def vortices(self) -> list[VortexPlan]:
        """Every vortex with an eye: Medicanes, then land and sea look-alikes."""
        return self.medicanes + self.land_vortices + self.sea_vortices


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
) -> tuple[list[VortexPlan], list[VortexPlan], list[VortexPlan]]:
    """Medicanes (over sea, separated), land vortices (over land) and sea vortices (look-alikes over sea).

    Look-alikes keep clear of the Medicanes and of each other by ``min_separation_km``; one that
    does not fit is left out. Sea vortices exist only when ``sea_vortices_per_day > 0`` (so the
    other presets draw exactly the numbers they drew before the setting existed).
    """
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

    sea_vortices: list[VortexPlan] = []
    for k in range(count_for(config.sea_vortices_per_day, days)):
        # anywhere in time, quiet gaps included: a vortex with an eye is not always a Medicane
        result = _plan_vortex(
            rng,
            config,
            object_id=f"sea{k + 1:03d}",
            name="",
            kind="sea_vortex",
            basin_start=basin_start,
            span=(0, total_hours - 1),
            candidates=sea_cells,
            ok=over_sea,
            duration_range=config.sea_vortex_duration_h,
            peak=float(rng.uniform(*config.sea_vortex_intensity)),
            attempts=50,
        )
        if result is not None:
            sea_vortices.append(result[0])
            occupancy.add(result[1], np.column_stack([result[0].lon, result[0].lat]))
    return medicanes, land_vortices, sea_vortices


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
    """Draw every object of the basin, in a fixed order so a seed always gives the same plan.

    The realism (``plan_realism``) is drawn last, and only when a realism setting is on, so the
    presets without it draw exactly the same numbers as before it existed.
    """
    medicanes, land_vortices, sea_vortices = plan_vortices(rng, config, grid, geo, basin_start, days)
    plan = BasinPlan(
        medicanes=medicanes,
        land_vortices=land_vortices,
        convection=plan_convection(rng, config, basin_start, days),
        commas=plan_commas(rng, config, basin_start, days),
        fronts=plan_fronts(rng, config, basin_start, days),
        sea_vortices=sea_vortices,
    )
    if config.realism:
        plan_realism(rng, config, grid, plan)
    return plan


# ---- realism --------------------------------------------------------------------------------


def ar1_series(rng: np.random.Generator, n: int, std: float, correlation_h: float) -> FloatArray:
    """``n`` hourly values of a stationary AR(1) (a sampled Ornstein-Uhlenbeck process).

    Standard deviation ``std`` at every hour, lag-1 correlation ``exp(-1 / correlation_h)``; the
    first value is drawn from the stationary law, so a short storm is as spread as a long one.
    """
    phi = float(np.exp(-1.0 / correlation_h))
    innovations = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = std * innovations[0]
    step = std * np.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + step * innovations[i]
    return out


def _labelled_track(
    lon: FloatArray, lat: FloatArray, east_km: FloatArray, north_km: FloatArray, grid: SeviriGrid
) -> tuple[FloatArray, FloatArray]:
    """The drawn track moved by (east, north) km, rounded like a track and kept on the grid.

    A label off the image would give no tile a target while its storm is drawn inside one, so
    a label beyond the grid is pulled back to the edge pixel (rare: the drawn centre keeps
    ``track_margin_px`` inside). The offset actually written is measured from the rounded
    values by the basin (label_error.csv), not taken from here.
    """
    label_lat = lat + north_km / KM_PER_DEG_LAT
    label_lon = lon + east_km / (KM_PER_DEG_LAT * np.cos(np.radians(lat)))
    x, y = grid.lonlat_to_pixel(label_lon, label_lat)
    off = ~((x >= 0) & (x <= grid.width - 1) & (y >= 0) & (y <= grid.height - 1))
    if off.any():
        cx, cy = np.clip(x[off], 0, grid.width - 1), np.clip(y[off], 0, grid.height - 1)
        label_lon[off], label_lat[off] = grid.pixel_to_lonlat(cx, cy)
    return np.round(label_lon, POSITION_DECIMALS), np.round(label_lat, POSITION_DECIMALS)


def _eye_fill(rng: np.random.Generator, intensity: FloatArray, config: SyntheticConfig) -> FloatArray:
    """Hourly eye fill 0..1 of a vortex with hourly ``intensity``: spells of a unit AR(1)'s upper tail.

    The threshold is this vortex's own ``1 - eye_fill_fraction`` quantile of the latent values
    over the hours its eye could show (intensity above ``eye_intensity[0]``), so every vortex has
    its eye filled (fill >= 0.5) in that share of those hours, in spells of about
    ``eye_fill_correlation_h`` (a global threshold would leave a two-storm episode anywhere from
    all clear to all filled). The +-0.25 soft edge makes a spell start and end over about an hour
    (a 5-minute frame interpolates the hourly values) instead of switching in one frame.
    """
    latent = ar1_series(rng, intensity.size, 1.0, config.eye_fill_correlation_h)
    fraction = config.eye_fill_fraction
    if fraction <= 0.0:
        return np.zeros(intensity.size)
    if fraction >= 1.0:
        return np.ones(intensity.size)
    could_show = intensity > config.eye_intensity[0]
    pool = latent[could_show] if could_show.any() else latent
    threshold = float(np.quantile(pool, 1.0 - fraction))
    return smoothstep((latent - threshold) / 0.5 + 0.5)


def plan_realism(
    rng: np.random.Generator, config: SyntheticConfig, grid: SeviriGrid, plan: BasinPlan
) -> None:
    """Give every vortex of ``plan`` its :class:`VortexRealism` (in place), in a fixed order.

    Every vortex draws the same numbers whichever realism settings are on (a setting at 0 just
    leaves its numbers unused), so turning one effect off keeps the rest of the basin as it was.

    Eyeless Medicanes (which also get their weaker peak intensity here) are picked by systematic
    sampling with a random phase over the Medicanes in genesis order: Medicane ``j`` is eyeless
    when ``floor(u + (j + 1) f)`` exceeds ``floor(u + j f)`` (``f`` the fraction, ``u`` uniform),
    so a basin of ``n`` storms has ``floor(n f)`` or ``ceil(n f)`` of them, spread out. A coin per
    storm would leave a two-storm episode (one split of a small dataset) eyeless a sixteenth of
    the time at ``f = 0.25``; this never does.
    """
    sigma_km = config.label_error_rms_km / np.sqrt(2.0)  # per component: the 2-D RMS is the setting
    phase = float(rng.random())
    fraction = config.eyeless_medicane_fraction
    eyeless_ids = {
        p.object_id
        for j, p in enumerate(plan.medicanes)
        if np.floor(phase + (j + 1) * fraction) > np.floor(phase + j * fraction)
    }
    for p in plan.vortices:
        n = p.lon.size
        east = ar1_series(rng, n, sigma_km, config.label_error_correlation_h)
        north = ar1_series(rng, n, sigma_km, config.label_error_correlation_h)
        fill = _eye_fill(rng, p.intensity(np.arange(n, dtype=np.float64)), config)
        weak_peak = float(rng.uniform(*config.eyeless_peak_intensity))
        offset = float(rng.uniform(*config.shield_offset_fraction)) * p.radius_km
        angle = float(rng.uniform(0.0, 360.0))
        turn = float(rng.normal(0.0, 1.0)) * config.shield_turn_deg_per_h
        elongation = float(rng.uniform(*config.shield_elongation))
        if config.label_error_rms_km > 0:
            label_lon, label_lat = _labelled_track(p.lon, p.lat, east, north, grid)
        else:
            label_lon, label_lat = p.lon, p.lat
        eyeless = p.kind == "medicane" and p.object_id in eyeless_ids
        if eyeless:
            p.peak_intensity = weak_peak
        p.realism = VortexRealism(
            label_lon=label_lon,
            label_lat=label_lat,
            eye_fill=fill,
            eyeless=eyeless,
            shield_offset_km=offset,
            shield_angle_deg=angle,
            shield_turn_deg_per_h=turn,
            shield_elongation=elongation,
        )
