"""One centre per storm and hour: detections of the same storm by overlapping tiles merged by distance in km.

The rule: the detections of one hour are grouped by complete-linkage clustering of their haversine distances
(scipy's ``linkage`` / ``fcluster``), cut at ``merge_radius_km``, so every two detections of a group are within
the radius of each other (single linkage would chain storms together through a line of tiles). In each group
the most confident detection wins: its centre is the storm's, the others point at it (``merged_into``). A
weighted mean would put a storm seen on a tile's edge between the two tiles' guesses, where neither saw it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage

from medicane_hf.data.geo import haversine_km

__all__ = ["merge_detections"]


def _groups(lon: np.ndarray, lat: np.ndarray, radius_km: float) -> np.ndarray:
    """Group number ``[n]`` of each point (complete linkage cut at `radius_km`)."""
    if len(lon) < 2:
        return np.ones(len(lon), dtype=np.int64)
    i, j = np.triu_indices(len(lon), k=1)  # scipy's condensed distance order
    distances = haversine_km(lon[i], lat[i], lon[j], lat[j])
    return fcluster(linkage(distances, method="complete"), t=radius_km, criterion="distance")


def merge_detections(detections: pd.DataFrame, radius_km: float) -> pd.DataFrame:
    """Mark the detection that stands for each storm of each hour.

    Args:
        detections: one row per tile above the threshold: ``detection_id``, ``time``, ``probability``, ``lon``,
            ``lat`` (degrees), in any order.
        radius_km: the merge radius.

    Returns:
        `detections` (same rows and order) with ``kept`` (bool: the storm's detection) and ``merged_into`` (the
        ``detection_id`` of the storm's detection; its own for a kept row).
    """
    out = detections.copy()
    merged_into = out["detection_id"].astype(str).to_numpy(dtype=object).copy()
    for _, rows in out.groupby("time", sort=False):
        index = rows.index.to_numpy()
        groups = _groups(rows["lon"].to_numpy(float), rows["lat"].to_numpy(float), radius_km)
        probability = rows["probability"].to_numpy(float)
        for group in np.unique(groups):
            members = np.flatnonzero(groups == group)
            # the most confident wins; ties go to the first row (tile order), so the result never depends on luck
            winner = members[np.argmax(probability[members])]
            merged_into[out.index.get_indexer(index[members])] = str(rows["detection_id"].iloc[winner])
    out["merged_into"] = merged_into
    out["kept"] = out["merged_into"] == out["detection_id"].astype(str)
    return out
