"""Render one synthetic Airmass RGB frame from a :class:`BasinPlan`.

A frame is built in layers, all float32 in uint8 units (0..255):

1. Air masses (computed on a coarse grid every ``lowres_factor`` pixels and
   upsampled bilinearly, since they are smooth): warm (green) to cold (violet)
   across a wavy boundary, dry intrusions (red/orange) along it, background
   cloud; comma clouds and fronts are drawn into these coarse fields too.
2. A faint fixed land pattern (visible in clear air only) and a fine cloud
   texture that drifts with the flow.
3. Convective clusters, land vortices, sea vortices (realistic preset only) and
   Medicanes, each in a small window around its centre at full resolution
   (Medicanes last, so their eye is never covered).
4. Sensor noise from a generator seeded by (seed, frame index).

A vortex with a :class:`~medicane_hf.data.synthetic.plans.VortexRealism` (the
realism settings) is drawn with its cloud shield off-centre and stretched, its eye
filled by cloud for spells of hours, no eye at all when it is an eyeless weak
Medicane, and a clear eye coloured like the clear air under the storm plus patchy
low cloud instead of the fixed eye colour. Without one, every number is computed
exactly as before those settings existed (same bytes).

Storm geometry is computed in km on the ground from the local pixel size, so a
100 km storm is round on the ground and slightly oval in pixels, as in the
real imagery. Angles are measured counter-clockwise from east with north up;
the pattern angle grows with time (counter-clockwise rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage
from scipy.special import erfinv

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.synthetic.config import AIRMASS_RANGES_K, SyntheticConfig, airmass_kelvin_to_rgb
from medicane_hf.data.synthetic.geography import pixel_land_fraction
from medicane_hf.data.synthetic.plans import BasinPlan, BlobPlan, CommaPlan, FrontPlan, VortexPlan, smoothstep

__all__ = ["FrameRenderer", "VortexStates", "clear_eye_opacity", "vortex_states"]

F32 = np.float32
FloatArray = npt.NDArray[np.float32]
KM_PER_DEG = 111.19
COS_REF = float(np.cos(np.radians(38.0)))
NOISE_PAD = 64


def _smoothstep32(x: FloatArray) -> FloatArray:
    c = np.clip(x, 0.0, 1.0)
    return c * c * (F32(3.0) - F32(2.0) * c)


@dataclass
class VortexStates:
    """Per-frame state of one vortex over the frames it lives in (arrays ``[n]``).

    ``first`` is the index of the first frame; x, y in pixels; dx_km, dy_km the local pixel
    size; radius_km the outer cloud radius; rotation_rad the pattern angle (counter-clockwise).

    With realism (``plan.realism`` set; else these are None): eye_opacity the drawn eye's peak
    opacity 0..1 (0 = no eye: too weak, filled or eyeless), eye_fill the cloud filling the eye
    0..1, shield_east_km / shield_north_km the offset of the cloud shield's centre from the
    vortex centre (km), shield_angle_rad the direction of its long axis (counter-clockwise from east).
    """

    plan: VortexPlan
    first: int
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    intensity: npt.NDArray[np.float64]
    radius_km: npt.NDArray[np.float64]
    dx_km: npt.NDArray[np.float64]
    dy_km: npt.NDArray[np.float64]
    rotation_rad: npt.NDArray[np.float64]
    t_h: npt.NDArray[np.float64]
    eye_opacity: npt.NDArray[np.float64] | None = None
    eye_fill: npt.NDArray[np.float64] | None = None
    shield_east_km: npt.NDArray[np.float64] | None = None
    shield_north_km: npt.NDArray[np.float64] | None = None
    shield_angle_rad: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.x.size)


def clear_eye_opacity(intensity: npt.ArrayLike, config: SyntheticConfig) -> npt.NDArray[np.float64]:
    """Opacity 0..1 of an unfilled eye at these intensities: 0 below ``eye_intensity[0]``, full at ``[1]``."""
    low, high = config.eye_intensity
    return min(1.0, config.contrast) * smoothstep(
        (np.asarray(intensity, dtype=np.float64) - low) / (high - low)
    )


def vortex_states(
    plan: VortexPlan,
    grid: SeviriGrid,
    basin_start: pd.Timestamp,
    frame_minutes: int,
    config: SyntheticConfig | None = None,
) -> VortexStates:
    """States of ``plan`` at every frame from its genesis to its end (inclusive).

    ``config`` is needed only for a plan with realism (its eye opacity follows the eye settings).
    """
    first = int((plan.start - basin_start) / pd.Timedelta(minutes=frame_minutes))
    n = plan.duration_h * 60 // frame_minutes + 1
    t_h = np.arange(n, dtype=np.float64) * frame_minutes / 60.0
    lon, lat = plan.position_at(t_h)
    x, y = grid.lonlat_to_pixel(lon, lat)
    dx, dy = grid.pixel_size_km(x, y)
    states = VortexStates(
        plan=plan,
        first=first,
        x=x,
        y=y,
        lon=lon,
        lat=lat,
        intensity=plan.intensity(t_h),
        radius_km=plan.radius_at(t_h),
        dx_km=dx,
        dy_km=dy,
        rotation_rad=np.radians(plan.rotation_deg_per_h * t_h),
        t_h=t_h,
    )
    realism = plan.realism
    if realism is not None:
        if config is None:
            raise ValueError(f"vortex {plan.object_id} has realism: vortex_states needs its config")
        hours = np.arange(plan.lon.size, dtype=np.float64)
        states.eye_fill = np.interp(t_h, hours, realism.eye_fill)
        opacity = clear_eye_opacity(states.intensity, config) * (1.0 - states.eye_fill)
        states.eye_opacity = np.zeros_like(opacity) if realism.eyeless else opacity
        angle = np.radians(realism.shield_angle_deg + realism.shield_turn_deg_per_h * t_h)
        # the offset grows with the storm, as a fixed share of its outer radius
        offset = realism.shield_offset_km * states.radius_km / plan.radius_km
        states.shield_east_km, states.shield_north_km = offset * np.cos(angle), offset * np.sin(angle)
        states.shield_angle_rad = angle
    return states


@dataclass
class BlobStates:
    """Per-frame state of a convective cluster (arrays ``[n]`` from frame ``first``)."""

    plan: BlobPlan
    first: int
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    dx_km: npt.NDArray[np.float64]
    dy_km: npt.NDArray[np.float64]
    strength: npt.NDArray[np.float64]


class FrameRenderer:
    """Everything needed to draw frame ``i`` of a basin; ``render(i)`` is deterministic per index.

    Args:
        config: the basin's settings.
        grid: pixel grid (``config.width`` x ``config.height``).
        plan: the objects to draw.
        basin_start: time of frame 0.
        n_frames: number of frame times.
        seed: basin seed; frame ``i`` draws its noise from ``default_rng([seed, 1, i])``.
    """

    def __init__(
        self,
        config: SyntheticConfig,
        grid: SeviriGrid,
        plan: BasinPlan,
        basin_start: pd.Timestamp,
        n_frames: int,
        seed: int,
    ) -> None:
        self.config = config
        self.grid = grid
        self.plan = plan
        self.basin_start = basin_start
        self.n_frames = n_frames
        self.seed = seed
        rng = np.random.default_rng([seed, 2])
        self._colours()
        self._coarse_grid()
        self._modes(rng)
        land = pixel_land_fraction(grid)
        self.land_rgb = (land[None] * _col(self.land_delta) * F32(config.land_tint)).astype(F32)
        self.texture = self._texture(rng)
        self.noise = self._noise_bank(rng)
        self._schedule()
        minutes = config.frame_minutes
        self.medicanes = [vortex_states(p, grid, basin_start, minutes, config) for p in plan.medicanes]
        self.land_vortices = [
            vortex_states(p, grid, basin_start, minutes, config) for p in plan.land_vortices
        ]
        self.sea_vortices = [vortex_states(p, grid, basin_start, minutes, config) for p in plan.sea_vortices]
        # a clear eye coloured like the air under the storm needs that air without its cloud
        self._keep_clear = config.eye_colour_mix < 1.0

    # ---- setup ----------------------------------------------------------------------------------

    def _colours(self) -> None:
        c = self.config
        self.warm = airmass_kelvin_to_rgb(c.warm_air_k)
        self.cold = airmass_kelvin_to_rgb(c.cold_air_k)
        self.dry = airmass_kelvin_to_rgb(c.dry_air_k)
        self.cloud = airmass_kelvin_to_rgb(c.cloud_k)
        self.eye = airmass_kelvin_to_rgb(c.eye_k)
        # the product's scaling is linear, so a K offset is a fixed count offset (B inverted)
        scale = np.array([255.0 / (hi - lo) for lo, hi in AIRMASS_RANGES_K], dtype=F32)
        self.land_delta = (np.asarray(c.land_k, dtype=F32) * scale).astype(F32)
        self.moisture_delta = (np.asarray(c.moisture_k, dtype=F32) * scale).astype(F32)

    def _coarse_grid(self) -> None:
        """Coarse sample points every ``lowres_factor`` px, one beyond the last row/column."""
        f, grid = self.config.lowres_factor, self.grid
        nx = int(np.ceil(grid.width / f)) + 1
        ny = int(np.ceil(grid.height / f)) + 1
        xs, ys = np.arange(nx) * f, np.arange(ny) * f
        lon, lat = grid.pixel_to_lonlat(*np.meshgrid(xs, ys))
        self.c_lon, self.c_lat = lon.astype(F32), lat.astype(F32)
        # local equirectangular km: enough for fields that vary over hundreds of km
        self.c_x_km = (lon * KM_PER_DEG * COS_REF).astype(F32)
        self.c_y_km = (lat * KM_PER_DEG).astype(F32)
        self.frac = (np.arange(f, dtype=F32) / F32(f)).astype(F32)

    def _modes(self, rng: np.random.Generator) -> None:
        """Travelling Fourier modes per latent field; wave vectors in rad/km, frequencies in rad/h.

        Fields: ``w`` warmth (air-mass boundary), ``d`` dry intrusions, ``c`` background cloud,
        ``m`` mid-level moisture (smaller scales, the mottling of real scenes).
        """
        c = self.config
        # per field: (spatial phase [m, h, w], omega [m, 1, 1], amplitude [m, 1, 1])
        self.modes: dict[str, tuple[FloatArray, FloatArray, FloatArray]] = {}
        for key, shrink in (("w", 1.0), ("d", 2.0), ("c", 2.0), ("m", 4.0)):
            m = c.synoptic_modes
            wavelength = rng.uniform(*c.synoptic_wavelength_km, size=m) / shrink
            direction = rng.uniform(-0.6 * np.pi, 0.6 * np.pi, size=m)  # mostly west-east waves
            k = 2 * np.pi / wavelength
            kx, ky = k * np.cos(direction), k * np.sin(direction)
            speed = rng.uniform(*c.synoptic_speed_kmh, size=m)
            omega = kx * speed  # eastward phase speed
            amp = rng.uniform(0.5, 1.0, size=m)
            amp = amp / np.sqrt(np.sum(amp**2) / 2.0)  # the sum has unit standard deviation
            phase = rng.uniform(0, 2 * np.pi, size=m)
            spatial = kx[:, None, None] * self.c_x_km + ky[:, None, None] * self.c_y_km + phase[:, None, None]
            self.modes[key] = (
                spatial.astype(F32),
                omega.astype(F32)[:, None, None],
                amp.astype(F32)[:, None, None],
            )
        centre_km = float(np.mean(self.grid.pixel_size_km(self.grid.width / 2, self.grid.height / 2)))
        self.drift_px_per_h = float(rng.uniform(*c.synoptic_speed_kmh)) / centre_km

    def _texture(self, rng: np.random.Generator) -> FloatArray:
        """Fixed fine cloud texture ``[H, W]``, unit standard deviation, rolled with the flow."""
        h, w = self.grid.height, self.grid.width
        pixel_km = float(np.mean(self.grid.pixel_size_km(w / 2, h / 2)))
        noise = rng.standard_normal((h, w)).astype(F32)
        # cloud structure at about 8 and 30 km, whatever the pixel size
        fine = ndimage.gaussian_filter(noise, max(0.8, 8.0 / pixel_km), mode="wrap")
        coarse = ndimage.gaussian_filter(noise, max(2.0, 30.0 / pixel_km), mode="wrap")
        tex = 0.5 * fine / (fine.std() + 1e-6) + coarse / (coarse.std() + 1e-6)
        return (tex / (tex.std() + 1e-6)).astype(F32)

    def _noise_bank(self, rng: np.random.Generator) -> FloatArray:
        """Unit Gaussian noise ``[3, H + 64, W + 64]``; a frame adds a window at a random offset and sign.

        Drawing 1.6 M normals per full-grid frame would cost more than the rest of the frame.
        """
        h, w = self.grid.height + NOISE_PAD, self.grid.width + NOISE_PAD
        return rng.standard_normal((3, h, w), dtype=F32)

    def _schedule(self) -> None:
        """Frame ranges and time offsets of the look-alikes, so a frame skips the dead ones cheaply."""
        minutes = self.config.frame_minutes
        self.lookalikes: list[tuple[str, object, float, int, int]] = []
        for kind, objects in (("comma", self.plan.commas), ("front", self.plan.fronts)):
            for o in objects:
                offset_h = (self.basin_start - o.start) / pd.Timedelta(hours=1)
                first = int(np.floor(-offset_h * 60 / minutes))
                last = int(np.ceil((o.duration_h - offset_h) * 60 / minutes))
                self.lookalikes.append((kind, o, offset_h, first, last))
        self.blobs = [self._blob_states(b) for b in self.plan.convection]

    def _blob_states(self, blob: BlobPlan) -> BlobStates:
        """Pixel position, pixel size and strength of a convective cluster at each frame of its life."""
        minutes = self.config.frame_minutes
        first = int(np.ceil((blob.start - self.basin_start) / pd.Timedelta(minutes=minutes)))
        n = int(blob.duration_h * 60 // minutes) + 1
        t_h = (self.basin_start - blob.start) / pd.Timedelta(hours=1) + (
            first + np.arange(n)
        ) * minutes / 60.0
        lon, lat = blob.position_at(t_h)
        x, y = self.grid.lonlat_to_pixel(lon, lat)
        dx, dy = self.grid.pixel_size_km(x, y)
        strength = blob.intensity(t_h) * self.config.contrast
        # off the Earth's disc (never on the real grids): draw nothing
        visible = np.isfinite(x) & np.isfinite(y) & np.isfinite(dx) & np.isfinite(dy)
        return BlobStates(
            plan=blob, first=first, x=x, y=y, dx_km=dx, dy_km=dy, strength=np.where(visible, strength, 0.0)
        )

    def _alive(self, kind: str, i: int) -> list[tuple[object, float]]:
        """(plan, hours since its start) of the look-alikes of ``kind`` alive at frame ``i``."""
        t = i * self.config.frame_minutes / 60.0
        return [
            (o, offset + t)
            for k, o, offset, first, last in self.lookalikes
            if k == kind and first <= i <= last
        ]

    # ---- coarse fields --------------------------------------------------------------------------

    def _wave_sum(self, key: str, t_h: float) -> FloatArray:
        """Sum of the field's travelling modes at ``t_h`` hours: ``[h, w]``, unit standard deviation."""
        spatial, omega, amp = self.modes[key]
        return np.sum(amp * np.cos(spatial - omega * F32(t_h)), axis=0)

    def _coarse_fields(self, i: int) -> FloatArray:
        """Clear-sky colour (channels 0-2) and cloud fraction (channel 3) on the coarse grid, ``[4, h, w]``."""
        c = self.config
        t_h = i * c.frame_minutes / 60.0
        boundary = (F32(c.warm_front_lat) - self.c_lat) / F32(c.warm_front_width_deg)
        boundary = boundary + F32(c.wave_amplitude) * self._wave_sum("w", t_h)
        warmth = F32(0.5) + F32(0.5) * np.tanh(boundary)
        near_front = np.exp(-((boundary / F32(0.9)) ** 2))
        dry = F32(c.dry_amount) * near_front * _smoothstep32(F32(0.5) + F32(0.6) * self._wave_sum("d", t_h))
        # threshold so that about background_cloud_cover of a unit-variance field is cloudy
        threshold = F32(np.sqrt(2.0) * erfinv(1.0 - 2.0 * c.background_cloud_cover))
        cloud = F32(c.background_cloud_max) * _smoothstep32(
            (self._wave_sum("c", t_h) + F32(0.6) * near_front - threshold) / F32(0.8)
        )
        for comma, t in self._alive("comma", i):
            cloud, dry = self._draw_comma(comma, t, cloud, dry)  # type: ignore[arg-type]
        for front, t in self._alive("front", i):
            cloud = self._draw_front(front, t, cloud)  # type: ignore[arg-type]
        dry = np.clip(dry, 0.0, 1.0)
        out = np.empty((4,) + self.c_lat.shape, dtype=F32)
        clear = out[:3]
        clear[:] = _col(self.cold) + warmth[None] * _col(self.warm - self.cold)
        clear += dry[None] * (_col(self.dry) - clear)
        clear += (F32(c.moisture_amount) * np.tanh(self._wave_sum("m", t_h)))[None] * _col(
            self.moisture_delta
        )
        out[3] = np.clip(cloud, 0.0, 1.0)
        return out

    def _local_km(self, lon: float, lat: float) -> tuple[FloatArray, FloatArray]:
        """East and north km of every coarse point from (lon, lat), equirectangular at that latitude."""
        cos_lat = F32(np.cos(np.radians(lat)))
        east = (self.c_lon - F32(lon)) * F32(KM_PER_DEG) * cos_lat
        north = (self.c_lat - F32(lat)) * F32(KM_PER_DEG)
        return east, north

    def _draw_comma(
        self, comma: CommaPlan, t: float, cloud: FloatArray, dry: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        strength = float(comma.intensity(t)) * self.config.contrast
        if strength <= 0.01:
            return cloud, dry
        lon, lat = comma.position_at(t)
        east, north = self._local_km(float(lon), float(lat))
        a = np.radians(comma.orientation_deg)
        u = (east * F32(np.cos(a)) + north * F32(np.sin(a))) / F32(comma.radius_km)
        v = (-east * F32(np.sin(a)) + north * F32(np.cos(a))) / F32(comma.radius_km)
        rho = np.sqrt(u * u + v * v)
        theta = np.arctan2(v, u)
        # head: a broad arc north of the low wrapping in counter-clockwise, filled towards the centre
        spiral = F32(0.5) + F32(0.5) * np.cos(theta - F32(np.pi / 2) + F32(1.8) * np.log(rho + F32(0.05)))
        head = np.exp(-(((rho - F32(0.45)) / F32(0.35)) ** 2)) * spiral**1.5
        head = np.maximum(
            head, F32(0.7) * np.exp(-((rho / F32(0.3)) ** 2)) * (F32(0.5) + F32(0.5) * np.sin(theta))
        )
        # tail: the cold front, from the head's east side curving south-west
        tail = _band(u, v, (0.45, 0.0), (0.75, -1.0), (0.1, -2.2), width=0.13)
        dry_slot = (
            np.exp(-(((rho - F32(0.55)) / F32(0.35)) ** 2))
            * (F32(0.5) + F32(0.5) * np.cos(theta + F32(2.4))) ** 3
        )
        cloud = np.maximum(cloud, F32(strength) * np.clip(head + F32(0.85) * tail, 0.0, 1.0))
        dry = dry + F32(0.9 * strength) * dry_slot * (F32(1.0) - cloud)
        return cloud, dry

    def _draw_front(self, front: FrontPlan, t: float, cloud: FloatArray) -> FloatArray:
        strength = float(front.intensity(t)) * self.config.contrast
        if strength <= 0.01:
            return cloud
        lon_mid, lat_mid = (float(v) for v in front.position_at(t))
        east, north = self._local_km(lon_mid, lat_mid)
        # the band keeps its shape while its middle control point drifts
        cos_lat = np.cos(np.radians(lat_mid))
        pts = [
            (
                (lo - front.control_lon[1]) * KM_PER_DEG * cos_lat / front.width_km,
                (la - front.control_lat[1]) * KM_PER_DEG / front.width_km,
            )
            for lo, la in zip(front.control_lon, front.control_lat)
        ]
        band = _band(east / F32(front.width_km), north / F32(front.width_km), *pts, width=1.0)
        return np.maximum(cloud, F32(strength) * band)

    # ---- full resolution ------------------------------------------------------------------------

    def _upsample(self, coarse: FloatArray) -> FloatArray:
        """Bilinear ``[C, h, w]`` -> ``[C, H, W]``, coarse point k at full pixel ``k * lowres_factor``.

        Written with reshapes and broadcasting (no gathers): output pixel ``j f + q`` blends
        coarse ``j`` and ``j + 1`` with weight ``q / f``.
        """
        f, q = self.config.lowres_factor, self.frac
        c, h, w = coarse.shape
        a, b = coarse[:, :, :-1, None], coarse[:, :, 1:, None]
        rows = (a + (b - a) * q).reshape(c, h, (w - 1) * f)[:, :, : self.grid.width]
        a, b = rows[:, :-1, None, :], rows[:, 1:, None, :]
        full = (a + (b - a) * q[:, None]).reshape(c, (h - 1) * f, self.grid.width)
        return full[:, : self.grid.height]

    def background(self, i: int) -> FloatArray:
        """Air masses, land pattern and textured cloud at frame ``i``: float32 ``[3, H, W]`` (channel first)."""
        return self._background(i, keep_clear=False)[0]

    def _background(self, i: int, *, keep_clear: bool) -> tuple[FloatArray, FloatArray | None]:
        """The background and, if ``keep_clear``, the same scene without its cloud (both ``[3, H, W]``)."""
        fields = self._upsample(self._coarse_fields(i))
        rgb = fields[:3]
        rgb += self.land_rgb
        clear = rgb.copy() if keep_clear else None
        t_h = i * self.config.frame_minutes / 60.0
        shift = int(round(self.drift_px_per_h * t_h)) % self.grid.width
        cloud = fields[3]
        cloud *= F32(1.0) + F32(self.config.cloud_texture) * np.roll(self.texture, shift, axis=1)
        np.clip(cloud, 0.0, 1.0, out=cloud)
        rgb += cloud[None] * (_col(self.cloud) - rgb)
        return rgb, clear

    def render(self, i: int, *, noisy: bool = False) -> npt.NDArray[np.uint8]:
        """Frame ``i`` as uint8 ``[H, W, 3]``; ``noisy`` adds the strong noise of a faulty frame."""
        rgb, clear = self._background(i, keep_clear=self._keep_clear)
        for blob in self.blobs:
            k = i - blob.first
            if 0 <= k < len(blob.strength) and blob.strength[k] > 0.01:
                self._draw_blob(rgb, blob, k)
        for states in self.land_vortices + self.sea_vortices + self.medicanes:
            k = i - states.first
            if 0 <= k < len(states):
                self._draw_vortex(rgb, states, k, clear)
        rng = np.random.default_rng([self.seed, 1, i])
        oy, ox = (int(v) for v in rng.integers(0, NOISE_PAD, size=2))
        sign = F32(1.0 if rng.random() < 0.5 else -1.0)
        rgb += self.noise[:, oy : oy + self.grid.height, ox : ox + self.grid.width] * (
            sign * F32(self.config.noise_std)
        )
        if noisy:
            rgb += rng.standard_normal(rgb.shape, dtype=F32) * F32(self.config.noisy_frame_std)
        rgb += F32(0.5)  # round half up on the cast below
        np.clip(rgb, 0.0, 255.0, out=rgb)
        return rgb.transpose(1, 2, 0).astype(np.uint8, order="C")

    def _window(
        self, x: float, y: float, half_x: int, half_y: int
    ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Pixel window around (x, y) clipped to the image; None if it misses the image."""
        x0, x1 = max(0, int(np.floor(x)) - half_x), min(self.grid.width, int(np.floor(x)) + half_x + 2)
        y0, y1 = max(0, int(np.floor(y)) - half_y), min(self.grid.height, int(np.floor(y)) + half_y + 2)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1), np.arange(x0, x1, dtype=F32), np.arange(y0, y1, dtype=F32)

    def _draw_vortex(self, rgb: FloatArray, s: VortexStates, k: int, clear: FloatArray | None = None) -> None:
        """Draw vortex ``s`` at its frame ``k`` into ``rgb``; ``clear`` is the cloud-free scene (realism)."""
        intensity = float(s.intensity[k])
        if intensity <= 0.01:
            return
        plan, c = s.plan, self.config
        radius, dx, dy = float(s.radius_km[k]), float(s.dx_km[k]), float(s.dy_km[k])
        sheared = s.shield_east_km is not None
        if sheared:
            assert plan.realism is not None
            stretch = float(np.sqrt(plan.realism.shield_elongation))
            offset = float(np.hypot(s.shield_east_km[k], s.shield_north_km[k]))  # type: ignore[index]
            reach = 1.6 * radius * stretch + offset
        else:
            reach = 1.6 * radius
        win = self._window(s.x[k], s.y[k], int(np.ceil(reach / dx)) + 1, int(np.ceil(reach / dy)) + 1)
        if win is None:
            return
        rows, cols, xs, ys = win
        east = (xs[None, :] - F32(s.x[k])) * F32(dx)
        north = -(ys[:, None] - F32(s.y[k])) * F32(dy)
        r = np.sqrt(east * east + north * north)
        if sheared:
            rho, phi = _shield_coordinates(s, k, east, north, radius, stretch)
        else:
            rho = r / F32(radius)
            phi = np.arctan2(north, east) - F32(s.rotation_rad[k])  # angle in the rotating frame
        cover = self._vortex_cover(plan, rho, phi)
        alpha = np.clip(F32(c.contrast * intensity) * cover, 0.0, 1.0)
        patch = rgb[:, rows, cols]
        patch += alpha[None] * (_col(self.cloud) - patch)
        eye_km = max(plan.eye_radius_km, c.min_eye_px * min(dx, dy))
        if s.eye_opacity is not None:
            self._draw_realistic_eye(
                patch, None if clear is None else clear[:, rows, cols], s, k, r, eye_km, rows, cols
            )
            return
        eye_strength = min(1.0, c.contrast) * float(
            smoothstep((intensity - c.eye_intensity[0]) / (c.eye_intensity[1] - c.eye_intensity[0]))
        )
        if eye_strength > 0:
            eye = F32(eye_strength) / (F32(1.0) + (r / F32(eye_km)) ** 4)
            patch += eye[None] * (_col(self.eye) - patch)

    def _vortex_cover(self, plan: VortexPlan, rho: FloatArray, phi: FloatArray) -> FloatArray:
        """Cloud cover 0..1 of a vortex at radius ``rho`` (outer radii) and pattern angle ``phi`` (rad)."""
        c = self.config
        a1, p1, a2, p2 = plan.asymmetry
        rho_e = rho / (
            F32(1.0) + F32(a1) * np.cos(phi - F32(p1)) + F32(a2) * np.cos(F32(2.0) * phi - F32(p2))
        )
        cdo = F32(1.0) / (F32(1.0) + (rho_e / F32(c.cdo_radius_fraction)) ** 8)
        # trailing spiral bands: the band angle falls with log radius, so arms wind in counter-clockwise
        band = F32(0.5) + F32(0.5) * np.cos(
            F32(plan.arms) * (phi + F32(plan.pitch) * np.log(rho + F32(0.05))) - F32(plan.band_phase)
        )
        # bands break up into a few segments that turn with the storm
        band = band * (F32(0.75) + F32(0.25) * np.cos(F32(3.0) * phi + F32(p1 + p2)))
        bands = band * band * np.exp(-(((rho_e - F32(1.0)) / F32(0.45)) ** 2))
        return F32(1.0) - (F32(1.0) - cdo) * (F32(1.0) - F32(c.band_strength) * bands)

    def _draw_realistic_eye(
        self,
        patch: FloatArray,
        clear: FloatArray | None,
        s: VortexStates,
        k: int,
        r: FloatArray,
        eye_km: float,
        rows: slice,
        cols: slice,
    ) -> None:
        """The eye of a vortex with realism: its opacity from the states, its colour the clear air.

        ``patch`` (``[3, h, w]``, a view into the frame) already holds the storm's cloud; ``clear``
        the same window without any cloud. The eye blends towards ``eye_colour_mix`` x eye colour
        + the rest x clear air, then patchy low cloud (``eye_texture`` x the positive part of the
        fixed texture) blends that towards the cloud colour, so an eye pixel has the colours of
        the air and cloud edges around it rather than one colour of its own.
        """
        c = self.config
        opacity = float(s.eye_opacity[k])  # type: ignore[index]
        if opacity <= 0:
            return
        eye = F32(opacity) / (F32(1.0) + (r / F32(eye_km)) ** 4)
        if clear is None:  # eye_colour_mix == 1: the fixed eye colour, as the old presets
            target = np.broadcast_to(_col(self.eye), patch.shape).astype(F32)
        else:
            target = clear + F32(c.eye_colour_mix) * (_col(self.eye) - clear)
        if c.eye_texture > 0:
            low_cloud = F32(c.eye_texture) * np.clip(self.texture[rows, cols], 0.0, 1.0)
            target += low_cloud[None] * (_col(self.cloud) - target)
        patch += eye[None] * (target - patch)

    def _draw_blob(self, rgb: FloatArray, states: BlobStates, k: int) -> None:
        blob = states.plan
        x, y, dx, dy = (float(v[k]) for v in (states.x, states.y, states.dx_km, states.dy_km))
        reach = 2.5 * blob.radius_km + float(np.abs(blob.sub_offsets_km).max())
        win = self._window(x, y, int(np.ceil(reach / dx)) + 1, int(np.ceil(reach / dy)) + 1)
        if win is None:
            return
        rows, cols, xs, ys = win
        east = (xs[None, :] - F32(x)) * F32(dx)
        north = -(ys[:, None] - F32(y)) * F32(dy)
        cover = np.zeros((ys.size, xs.size), dtype=F32)
        for (oe, on), frac in zip(blob.sub_offsets_km, blob.sub_radii):
            d2 = ((east - F32(oe)) ** 2 + (north - F32(on)) ** 2) / F32((blob.radius_km * frac) ** 2)
            cover = np.maximum(cover, F32(1.0) / (F32(1.0) + d2 * d2))
        alpha = np.clip(F32(states.strength[k]) * cover, 0.0, 1.0)
        patch = rgb[:, rows, cols]
        patch += alpha[None] * (_col(self.cloud) - patch)


def _shield_coordinates(
    s: VortexStates, k: int, east: FloatArray, north: FloatArray, radius_km: float, stretch: float
) -> tuple[FloatArray, FloatArray]:
    """Radius (outer radii) and pattern angle (rad) of the cloud shield, centred off the vortex centre.

    The shield's centre is ``(shield_east_km, shield_north_km)`` from the vortex centre; it is
    ``stretch`` times longer along ``shield_angle_rad`` and ``stretch`` times shorter across (area
    kept). ``east``/``north`` are km from the vortex centre.
    """
    se = east - F32(s.shield_east_km[k])  # type: ignore[index]
    sn = north - F32(s.shield_north_km[k])  # type: ignore[index]
    angle = float(s.shield_angle_rad[k])  # type: ignore[index]
    ca, sa = F32(np.cos(angle)), F32(np.sin(angle))
    along = (se * ca + sn * sa) / F32(stretch)
    across = (sn * ca - se * sa) * F32(stretch)
    rho = np.sqrt(along * along + across * across) / F32(radius_km)
    # back from the axis frame to east, then into the rotating frame, so the spiral keeps turning
    phi = np.arctan2(across, along) + F32(angle) - F32(s.rotation_rad[k])
    return rho, phi


def _col(rgb: FloatArray) -> FloatArray:
    """A colour ``[3]`` shaped ``[3, 1, 1]`` to broadcast over channel-first images."""
    return rgb.reshape(3, 1, 1)


def _band(
    u: FloatArray,
    v: FloatArray,
    p0: tuple[float, float],
    p1: tuple[float, float],
    p2: tuple[float, float],
    width: float,
) -> FloatArray:
    """Gaussian band (peak 1, e-folding half-width ``width``) around a quadratic Bezier curve, same units as u, v."""
    s = np.linspace(0.0, 1.0, 48, dtype=F32)[:, None, None]
    cu = (1 - s) ** 2 * F32(p0[0]) + 2 * (1 - s) * s * F32(p1[0]) + s**2 * F32(p2[0])
    cv = (1 - s) ** 2 * F32(p0[1]) + 2 * (1 - s) * s * F32(p1[1]) + s**2 * F32(p2[1])
    d2 = np.min((u[None] - cu) ** 2 + (v[None] - cv) ** 2, axis=0)
    # fade the ends so the band does not stop abruptly
    return np.exp(-d2 / F32(width * width)).astype(F32)
