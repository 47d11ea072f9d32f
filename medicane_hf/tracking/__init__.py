"""Predict and track: a folder of frames -> detections, one centre per storm and hour, linked tracks, scores, maps.

One job per module:

- ``settings``: every number (threshold, merge radius, speed gate, gap, minimum duration, match radius);
- ``detect``: the detector on every tile of an hour and the tracker on the tiles above the threshold, through
  batch inference's loop and tables (`medicane_hf.inference`);
- ``merge``: one centre per storm and hour across overlapping tiles (complete linkage in km, the most confident
  wins);
- ``linking``: hourly centres -> tracks (``scipy.optimize.linear_sum_assignment``, speed gate, gaps, minimum
  duration);
- ``scoring``: against a tracks file (hourly POD / FAR, centre error km, per storm, false tracks);
- ``tables``: detections.csv, hours.csv, tracks.csv, summary.json, written atomically;
- ``figures``: the basin map (PNG) and the animation (GIF, MP4 with ffmpeg);
- ``command``: ``medicane-hf predict-track``.
"""

from __future__ import annotations

from medicane_hf._lazy import lazy_getattr

_LAZY = {
    "main": "medicane_hf.tracking.command",
    "run": "medicane_hf.tracking.command",
    "TrackingSettings": "medicane_hf.tracking.settings",
    "assign_tracks": "medicane_hf.tracking.linking",
    "link_tracks": "medicane_hf.tracking.linking",
    "merge_detections": "medicane_hf.tracking.merge",
    "score_tracks": "medicane_hf.tracking.scoring",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
