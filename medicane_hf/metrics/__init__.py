"""The detection and tracking metrics as `evaluate` modules, shipped inside the package.

Each folder is what a Hub metric Space holds: the module script (``<name>/<name>.py``), ``README.md`` (the
metric card, with the Space's front matter), ``requirements.txt`` and ``app.py`` (the Space's widget). Load one
offline from its path::

    import evaluate
    from medicane_hf.metrics import module_path
    detection = evaluate.load(module_path("medicane_detection"))

The scripts compute nothing themselves: `scores` turns their inputs into the stage registry's metric functions
(`medicane_hf.tasks.detection_metrics`, `tracking_metrics`), the ones training and batch inference use.
evaluate copies a script into its cache before importing it, so the scripts import ``medicane_hf`` by absolute
import: the package must be installed where they run.
"""

from __future__ import annotations

from pathlib import Path

MODULES = ("medicane_detection", "medicane_tracking")
"""The evaluate modules of this package, one folder each."""


def module_path(name: str) -> str:
    """The folder of the evaluate module `name` (one of `MODULES`), for ``evaluate.load``."""
    if name not in MODULES:
        raise ValueError(f"no evaluate module {name!r} in medicane_hf.metrics; there are {list(MODULES)}")
    return str(Path(__file__).resolve().parent / name)
