"""A synthetic Mediterranean: Medicanes on tracks, look-alikes and sensor gaps (``medicane-hf synth``).

No real SEVIRI archive ships with the project, so this is what ``make demo``, every script run without
arguments, the tests and the benchmarks run on. One job per module:

    config.py     SyntheticConfig: every number of the generator; the demo / default / hard / realistic presets
    geography.py  a crude fixed Mediterranean: sea polygons rasterised once, "over sea" for everyone
    plans.py      what happens: Medicane tracks, look-alikes, faults, drawn once before any frame
    rendering.py  one Airmass RGB frame from a plan (air masses, land, storms, noise)
    basin.py      generate_basin: writes frames, tracks.csv, grid.json, truth and faults (in parallel)
    command.py    ``medicane-hf synth``
    default.py    cached datasets: the embedded default and any preset / seed / episode list

The names of ``basin`` and the cached-dataset functions of ``default`` are re-exported here
(``from medicane_hf.data.synthetic import generate_basin, ensure_synthetic_dataset``).
"""

from medicane_hf.data.synthetic.basin import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START,
    FRAME_NAME_FORMAT,
    PRESETS,
    SyntheticBasin,
    SyntheticConfig,
    frame_path,
    generate_basin,
    grid_for,
    label_error_table,
    preview_only,
    tracks_table,
    write_preview,
)
from medicane_hf.data.synthetic.default import (
    ensure_default_dataset,
    ensure_synthetic_dataset,
    read_source_label_error,
    read_source_truth,
    spaced_episodes,
)

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "FRAME_NAME_FORMAT",
    "PRESETS",
    "SyntheticBasin",
    "SyntheticConfig",
    "ensure_default_dataset",
    "ensure_synthetic_dataset",
    "frame_path",
    "generate_basin",
    "grid_for",
    "label_error_table",
    "preview_only",
    "read_source_label_error",
    "read_source_truth",
    "spaced_episodes",
    "tracks_table",
    "write_preview",
]
