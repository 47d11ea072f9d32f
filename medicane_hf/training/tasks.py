"""Old home of the stage registry and the dataset-array helpers, kept importable while callers move.

The registry is `medicane_hf.tasks`; labels / targets / tile offsets of a dataset are in
`medicane_hf.data.dataset_arrays`; class weights in `medicane_hf.training.class_weights`.
(``training/learning_check.py`` on main still imports ``dataset_labels`` / ``dataset_targets`` from here.)
"""

from medicane_hf.data.dataset_arrays import dataset_labels, dataset_targets, tile_offsets
from medicane_hf.tasks import TASKS, MetricContext, TaskSpec
from medicane_hf.training.class_weights import balanced_class_weights, parse_class_weights

__all__ = [
    "TASKS",
    "MetricContext",
    "TaskSpec",
    "balanced_class_weights",
    "dataset_labels",
    "dataset_targets",
    "parse_class_weights",
    "tile_offsets",
]
