"""Settings of the synthetic Mediterranean and its four presets.

Every number the generator uses lives in :class:`SyntheticConfig`; the presets
``demo``, ``default``, ``hard`` and ``realistic`` are instances of it. Ranges are
``(low, high)`` tuples from which each object draws its own value.

The realism settings (label error, cloud-filled eyes, eyeless weak Medicanes, asymmetric
cloud shields, sea look-alikes with an eye, an eye coloured like the clear air) are off in
``demo``, ``default`` and ``hard``, whose files stay byte-identical to the basins made
before those settings existed; ``realistic`` turns them on (docs/synthetic.md).

Colours are set the way the real product is made (docs/DOMAIN.md section 1):
as brightness temperatures in K per Airmass channel,
``(WV6.2 - WV7.3, IR9.7 - IR10.8, WV6.2)``, converted to uint8 by the product's
own clipping and linear scaling (:func:`airmass_kelvin_to_rgb`). So "cold air is
violet" follows from a cold WV6.2 (high, inverted blue) and a large ozone
difference (low green), not from a hand-picked RGB triple.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medicane_hf.data.clips import TileLayout
from medicane_hf.data.geo import SeviriGrid

__all__ = [
    "AIRMASS_RANGES_K",
    "PRESETS",
    "SyntheticConfig",
    "airmass_kelvin_to_rgb",
    "get_preset",
]

Range = tuple[float, float]

AIRMASS_RANGES_K: tuple[Range, Range, Range] = ((-25.0, 0.0), (-40.0, 5.0), (243.0, 208.0))
"""Per channel (R, G, B): the K value that maps to 0 and the one that maps to 255 (B is inverted)."""


def airmass_kelvin_to_rgb(kelvin: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Airmass channel values in K ``[..., 3]`` -> float RGB in 0..255 ``[..., 3]`` (clipped, not rounded).

    Channel order: R = WV6.2 - WV7.3 in [-25, 0] K, G = IR9.7 - IR10.8 in [-40, 5] K,
    B = WV6.2 in [243, 208] K (inverted: colder is bluer).
    """
    k = np.asarray(kelvin, dtype=np.float32)
    low = np.array([r[0] for r in AIRMASS_RANGES_K], dtype=np.float32)
    high = np.array([r[1] for r in AIRMASS_RANGES_K], dtype=np.float32)
    return np.clip((k - low) / (high - low), 0.0, 1.0) * np.float32(255.0)


@dataclass(frozen=True)
class SyntheticConfig:
    """Every setting of the synthetic basin. Distances in km, speeds in km/h, durations in hours.

    Grid and files:
        width, height: image size in pixels over the real SEVIRI corners (the grid's pixel size
            follows: about 3 km at 1290 x 420, about 10 km at 384 x 128).
        tile_size, stride_x, stride_y: tile layout written to grid.json for build-dataset.
        frame_minutes: frame interval (the archive's 5 minutes).
        day_folders: write frames under ``frames/YYYY/MM/DD/`` (as the real archive) or flat.
        png_compress_level: zlib level for PIL (1 = fast).
        png_compress_strategy: zlib strategy for PIL's ``compress_type``; 2 = Huffman only, which on
            these noisy frames is both faster and about 13 % smaller than the default strategy.
        lowres_factor: the smooth background is computed every this many pixels and upsampled.

    Background (synoptic air masses, drifting eastwards):
        synoptic_modes: Fourier modes per latent field (warmth, dryness, cloud).
        synoptic_wavelength_km, synoptic_speed_kmh: wavelength and eastward phase speed of a mode.
        warm_front_lat, warm_front_width_deg: latitude where air turns from warm (south, green)
            to cold (north, violet), and how gradually.
        wave_amplitude: how far the modes push that boundary (in units of the width).
        dry_amount: strength of the dry (red/orange) intrusions along the boundary.
        background_cloud_cover: fraction of the area under background (stratiform) cloud.
        background_cloud_max: opacity of that cloud where it is thickest.
        cloud_texture: relative amplitude of the fine texture on background cloud.
        moisture_amount: strength of mid-level moisture mottling (``moisture_k`` per unit).
        land_tint: strength of the faint land signal (0 = land invisible).
        noise_std: sensor noise on every frame, uint8 counts (standard deviation).

    Medicanes (written to tracks.csv):
        medicanes_per_day: number of storms = rate x days rounded half up, at least 1.
        medicane_duration_h: life time range; the track is hourly from genesis to dissipation.
        episode_hours, quiet_hours: Medicanes come in active episodes separated by quiet gaps
            (storms of different episodes never overlap in time, so splits by storm group have
            several groups); a storm lasts at most its episode.
        medicane_growth_fraction, medicane_decay_fraction: share of the life in growth and decay;
            the Medicane window is the mature part between them.
        medicane_radius_km: outer radius of the cloud disc (spiral bands end near 1.3 x).
        eye_radius_km: radius of the clear eye; min_eye_px keeps it visible on coarse grids.
        medicane_speed_kmh: translation speed range (hourly steps stay inside it).
        medicane_rotation_deg_per_h: angular speed of the cloud pattern (counter-clockwise).
        spiral_arms: number of spiral bands (inclusive range); spiral_pitch: how tightly they wind
            (band angle falls by pitch x log radius).
        cdo_radius_fraction: radius of the central dense overcast, fraction of the outer radius.
        band_strength: opacity of the spiral bands relative to the central overcast.
        eye_intensity: intensity at which the eye starts to show and at which it is fully clear.
        min_separation_km: two Medicanes never come closer than this at the same hour.
        coast_margin_km: Medicane centres stay this far from land.
        track_turn_deg_per_h: random-walk spread of the heading per hour.
        genesis_box: (lon_min, lon_max, lat_min, lat_max) where Medicanes may form.
        track_margin_px: track points stay this far inside the image.

    Look-alikes (never in tracks.csv):
        land_vortices_per_day: spiral vortices with an eye that move over land.
        land_vortex_intensity: peak intensity range of those (a Medicane peaks at 1).
        land_vortex_duration_h, land_genesis_box: their life time and where they form.
        comma_clouds_per_day, comma_radius_km, comma_speed_kmh, comma_duration_h: extratropical
            comma clouds, large, no eye, with a dry slot.
        fronts_per_day, front_length_km, front_width_km, front_speed_kmh, front_duration_h:
            long curved cloud bands.
        convection_per_day, convection_radius_km, convection_duration_h: bright short-lived
            clusters, no eye; convection_drift_kmh: (mean east, mean north, spread) of their motion.

    Difficulty:
        contrast: opacity of Medicanes, look-alikes and the eye (1 = textbook, lower = harder).

    Realism (all off by default; the ``realistic`` preset turns them on, docs/synthetic.md):
        label_error_rms_km: total (2-D) RMS distance between the position written to tracks.csv
            and the drawn centre (synthetic_truth.csv keeps the drawn one; label_error.csv has
            both and the offset per track row). 0 = the label is the drawn centre.
        label_error_correlation_h: correlation time of that offset: per storm and component an
            hourly AR(1) (Ornstein-Uhlenbeck) process with lag-1 correlation ``exp(-1 h / this)``.
        eye_fill_fraction: share of hours in which an eye that would show is filled by cloud
            (every vortex, look-alikes too); 0 = eyes always clear.
        eye_fill_correlation_h: correlation time of the latent process whose upper tail fills the eye,
            so filled spells last hours, not single frames.
        eyeless_medicane_fraction: share of the Medicanes that are weak ones never showing an eye
            (still in tracks.csv with their window); a basin of n storms has floor or ceil of
            n x this, spread over them (``plans.plan_realism``).
        eyeless_peak_intensity: peak intensity range of those (a Medicane with an eye peaks at 1).
        shield_offset_fraction: distance of the cloud shield's centre from the vortex centre,
            as a fraction of the outer radius (the eye stays on the vortex centre).
        shield_elongation: axis ratio (>= 1) of the cloud shield, area kept.
        shield_turn_deg_per_h: spread (standard deviation) of how fast the offset's direction and the
            long axis turn, degrees per hour.
        sea_vortices_per_day, sea_vortex_intensity, sea_vortex_duration_h: look-alikes over the sea:
            short-lived vortices drawn like a Medicane, eye included, that are never in tracks.csv.
        eye_colour_mix: colour of a clear eye: 1 = the fixed ``eye_k`` (one colour found nowhere
            else, as in the old presets), 0 = the clear air under the storm (the local air mass,
            land tint and sensor noise), in between a blend.
        eye_texture: opacity of the patchy low cloud inside a clear eye (0 = none), drawn from the
            fixed cloud texture.

    Sensor faults (listed in faults.csv):
        missing_frames_per_day: single missing frames.
        gaps_per_day, gap_minutes: short runs of missing frames.
        black_frames_per_day: all-black frames (the file exists, every pixel is 0).
        noisy_frames_per_day, noisy_frame_std: frames with strong extra noise (uint8 counts).

    Colours (K per Airmass channel, see module docstring):
        warm_air_k, cold_air_k, dry_air_k, cloud_k, eye_k: anchors mixed by the latent fields.
        land_k: offset added over land (times ``land_tint``).
        moisture_k: offset per unit of mid-level moisture (moist: colder WV6.2, bluer).
    """

    name: str = "demo"
    # grid and files
    width: int = 384
    height: int = 128
    tile_size: int = 64
    stride_x: int = 64
    stride_y: int = 64
    frame_minutes: int = 5
    day_folders: bool = True
    png_compress_level: int = 1
    png_compress_strategy: int = 2
    lowres_factor: int = 4
    # background
    synoptic_modes: int = 5
    synoptic_wavelength_km: Range = (1500.0, 4500.0)
    synoptic_speed_kmh: Range = (15.0, 45.0)
    warm_front_lat: float = 40.0
    warm_front_width_deg: float = 5.0
    wave_amplitude: float = 1.2
    dry_amount: float = 0.85
    background_cloud_cover: float = 0.2
    background_cloud_max: float = 0.85
    cloud_texture: float = 0.35
    moisture_amount: float = 0.6
    land_tint: float = 0.6
    noise_std: float = 1.5
    # Medicanes
    medicanes_per_day: float = 1.5
    medicane_duration_h: Range = (24.0, 96.0)
    episode_hours: Range = (24.0, 40.0)
    quiet_hours: Range = (4.0, 12.0)
    medicane_growth_fraction: Range = (0.2, 0.3)
    medicane_decay_fraction: Range = (0.2, 0.3)
    medicane_radius_km: Range = (50.0, 150.0)
    eye_radius_km: Range = (10.0, 25.0)
    min_eye_px: float = 1.6
    medicane_speed_kmh: Range = (5.0, 40.0)
    medicane_rotation_deg_per_h: Range = (40.0, 80.0)
    spiral_arms: tuple[int, int] = (2, 3)
    spiral_pitch: Range = (0.8, 1.4)
    cdo_radius_fraction: float = 0.62
    band_strength: float = 0.9
    eye_intensity: Range = (0.5, 0.9)
    min_separation_km: float = 450.0
    coast_margin_km: float = 40.0
    track_turn_deg_per_h: float = 8.0
    genesis_box: tuple[float, float, float, float] = (-1.0, 35.0, 31.5, 43.0)
    track_margin_px: float = 2.0
    # look-alikes
    land_vortices_per_day: float = 0.5
    land_vortex_intensity: Range = (0.6, 0.95)
    land_vortex_duration_h: Range = (12.0, 48.0)
    land_genesis_box: tuple[float, float, float, float] = (-9.0, 45.0, 30.5, 47.5)
    comma_clouds_per_day: float = 0.5
    comma_radius_km: Range = (350.0, 750.0)
    comma_speed_kmh: Range = (25.0, 50.0)
    comma_duration_h: Range = (24.0, 72.0)
    fronts_per_day: float = 0.6
    front_length_km: Range = (1000.0, 2500.0)
    front_width_km: Range = (60.0, 150.0)
    front_speed_kmh: Range = (20.0, 40.0)
    front_duration_h: Range = (24.0, 60.0)
    convection_per_day: float = 20.0
    convection_radius_km: Range = (15.0, 60.0)
    convection_duration_h: Range = (2.0, 8.0)
    convection_drift_kmh: tuple[float, float, float] = (12.0, 0.0, 7.0)
    # difficulty
    contrast: float = 1.0
    # realism (off: the old presets' bytes do not depend on these)
    label_error_rms_km: float = 0.0
    label_error_correlation_h: float = 12.0
    eye_fill_fraction: float = 0.0
    eye_fill_correlation_h: float = 6.0
    eyeless_medicane_fraction: float = 0.0
    eyeless_peak_intensity: Range = (0.55, 0.8)
    shield_offset_fraction: Range = (0.0, 0.0)
    shield_elongation: Range = (1.0, 1.0)
    shield_turn_deg_per_h: float = 0.0
    sea_vortices_per_day: float = 0.0
    sea_vortex_intensity: Range = (0.75, 1.0)
    sea_vortex_duration_h: Range = (8.0, 20.0)
    eye_colour_mix: float = 1.0
    eye_texture: float = 0.0
    # sensor faults
    missing_frames_per_day: float = 3.0
    gaps_per_day: float = 1.0
    gap_minutes: Range = (15.0, 60.0)
    black_frames_per_day: float = 0.5
    noisy_frames_per_day: float = 1.0
    noisy_frame_std: float = 25.0
    # colours, K per channel (WV6.2-WV7.3, IR9.7-IR10.8, WV6.2)
    warm_air_k: tuple[float, float, float] = (-19.0, -18.0, 238.0)
    cold_air_k: tuple[float, float, float] = (-13.0, -30.0, 221.0)
    dry_air_k: tuple[float, float, float] = (-8.0, -27.0, 235.0)
    cloud_k: tuple[float, float, float] = (-2.0, -1.5, 211.0)
    eye_k: tuple[float, float, float] = (-21.0, -18.0, 241.0)
    land_k: tuple[float, float, float] = (1.0, 2.5, 0.0)
    moisture_k: tuple[float, float, float] = (-3.0, 0.0, -6.0)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(
                f"SyntheticConfig {self.name!r}: grid must be at least 16 x 16 px, got {self.width} x {self.height}"
            )
        if self.tile_size > min(self.width, self.height):
            raise ValueError(
                f"SyntheticConfig {self.name!r}: tile_size {self.tile_size} does not fit a {self.width} x {self.height} grid"
            )
        if 60 % self.frame_minutes != 0:
            raise ValueError(
                f"SyntheticConfig {self.name!r}: frame_minutes must divide 60, got {self.frame_minutes}"
            )
        if self.lowres_factor < 1:
            raise ValueError(
                f"SyntheticConfig {self.name!r}: lowres_factor must be >= 1, got {self.lowres_factor}"
            )
        for name in (
            "medicane_speed_kmh",
            "medicane_radius_km",
            "eye_radius_km",
            "medicane_duration_h",
            "gap_minutes",
        ):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(
                    f"SyntheticConfig {self.name!r}: {name} must be a range 0 < low <= high, got {(low, high)}"
                )
        if not 0.0 <= self.eye_intensity[0] < self.eye_intensity[1]:
            raise ValueError(
                f"SyntheticConfig {self.name!r}: eye_intensity must be (start, full) with 0 <= start < full, "
                f"got {self.eye_intensity}"
            )
        if not 0.0 < self.contrast <= 1.5:
            raise ValueError(
                f"SyntheticConfig {self.name!r}: contrast must be in (0, 1.5], got {self.contrast}"
            )
        self._validate_realism()

    def _validate_realism(self) -> None:
        for name in ("eye_fill_fraction", "eyeless_medicane_fraction", "eye_colour_mix", "eye_texture"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SyntheticConfig {self.name!r}: {name} must be in [0, 1], got {value}")
        for name in ("label_error_rms_km", "shield_turn_deg_per_h", "sea_vortices_per_day"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"SyntheticConfig {self.name!r}: {name} must be >= 0, got {getattr(self, name)}"
                )
        for name in ("label_error_correlation_h", "eye_fill_correlation_h"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"SyntheticConfig {self.name!r}: {name} must be > 0 hours, got {getattr(self, name)}"
                )
        checks = (
            ("shield_offset_fraction", 0.0, "0 <= low <= high"),
            ("shield_elongation", 1.0, "1 <= low <= high"),
            ("eyeless_peak_intensity", 0.0, "0 <= low <= high"),
            ("sea_vortex_intensity", 0.0, "0 <= low <= high"),
            ("sea_vortex_duration_h", 4.0, "4 <= low <= high"),
        )
        for name, floor, rule in checks:
            low, high = getattr(self, name)
            if not floor <= low <= high:
                raise ValueError(
                    f"SyntheticConfig {self.name!r}: {name} must be a range {rule}, got {(low, high)}"
                )

    @property
    def realism(self) -> bool:
        """True when any realism setting is on: the plan then draws each vortex's realism (docs/synthetic.md)."""
        return (
            self.label_error_rms_km > 0
            or self.eye_fill_fraction > 0
            or self.eyeless_medicane_fraction > 0
            or self.shield_offset_fraction[1] > 0
            or self.shield_elongation[1] > 1.0
            or self.sea_vortices_per_day > 0
            or self.eye_colour_mix < 1.0
            or self.eye_texture > 0
        )

    @property
    def frames_per_day(self) -> int:
        """Number of frame times in 24 h (288 at 5 minutes)."""
        return 24 * 60 // self.frame_minutes

    @property
    def tiles(self) -> dict[str, int]:
        """The tile layout as written to grid.json."""
        return {"tile_size": self.tile_size, "stride_x": self.stride_x, "stride_y": self.stride_y}

    def replace(self, **changes: Any) -> SyntheticConfig:
        """A copy with some settings changed (validated); unknown names are an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"SyntheticConfig has no settings {unknown}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every setting."""
        return dataclasses.asdict(self)


# The real SEVIRI grid and tile layout, as declared once in geo.SeviriGrid and clips.TileLayout.
_SEVIRI, _TILES = SeviriGrid(), TileLayout()
_FULL_GRID = SyntheticConfig(
    name="default",
    width=_SEVIRI.width,
    height=_SEVIRI.height,
    tile_size=_TILES.tile_size,
    stride_x=_TILES.stride_x,
    stride_y=_TILES.stride_y,
    lowres_factor=6,
    min_eye_px=1.5,
    episode_hours=(30.0, 72.0),
)

# The embedded default: small and fast, still several storms in a few days. Its pixels are
# 10-20 km, so storms start at 75 km: smaller ones would be a few pixels with no resolvable eye.
_DEMO = SyntheticConfig(medicane_radius_km=(75.0, 150.0))

PRESETS: dict[str, SyntheticConfig] = {
    "demo": _DEMO,
    "default": _FULL_GRID,
    # Full grid, faint storms, twice the look-alikes, noisier sensor.
    "hard": _FULL_GRID.replace(
        name="hard",
        contrast=0.55,
        background_cloud_cover=0.3,
        noise_std=4.0,
        land_vortices_per_day=1.0,
        land_vortex_intensity=(0.8, 1.0),
        comma_clouds_per_day=1.0,
        fronts_per_day=1.2,
        convection_per_day=50.0,
        missing_frames_per_day=6.0,
        gaps_per_day=2.0,
        black_frames_per_day=1.0,
        noisy_frames_per_day=3.0,
    ),
    # The demo grid (cheap enough to train on 2 CPU cores) with what makes real imagery hard:
    # labels tens of km off the visible centre (ERA5 composite tracks), eyes often cloud-filled,
    # weak eyeless Medicanes, lopsided cloud, vortices with an eye over land *and* sea that are
    # not Medicanes, and an eye coloured like the clear air around the storm.
    "realistic": _DEMO.replace(
        name="realistic",
        # land look-alikes as often as sea ones, strong enough that their eye shows
        land_vortices_per_day=1.0,
        land_vortex_intensity=(0.8, 1.0),
        label_error_rms_km=20.0,
        label_error_correlation_h=12.0,
        eye_fill_fraction=0.3,
        eye_fill_correlation_h=6.0,
        eyeless_medicane_fraction=0.25,
        eyeless_peak_intensity=(0.55, 0.8),
        shield_offset_fraction=(0.05, 0.35),
        shield_elongation=(1.0, 1.6),
        shield_turn_deg_per_h=4.0,
        sea_vortices_per_day=1.0,
        sea_vortex_intensity=(0.75, 1.0),
        sea_vortex_duration_h=(8.0, 20.0),
        eye_colour_mix=0.0,
        eye_texture=0.35,
    ),
}


def get_preset(name: str) -> SyntheticConfig:
    """The preset called ``name`` (demo, default, hard, realistic); a clear error lists the others."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic preset {name!r}; choose one of {sorted(PRESETS)}") from None
