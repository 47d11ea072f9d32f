"""`evaluate` module: the Medicane tracking scores of medicane-hf (training, batch inference, metrics.json).

evaluate copies this file into its cache before importing it, so it imports the installed ``medicane_hf``
package by absolute import (``pip install medicane-hf``); the scores come from `medicane_hf.metrics.scores`,
which calls the stage registry's own metric function: no formula lives here.
"""

import datasets
import evaluate

from medicane_hf.metrics.scores import CITATION, tracking_scores

_DESCRIPTION = """\
Centre errors of a Medicane tracker over a set of clips: the exact figures medicane-hf writes during training
and batch inference. Each predicted and true centre (tile pixels) is moved into the grid by its tile offset,
turned into longitude / latitude with the frames' grid (Meteosat SEVIRI geostationary projection) and compared
on the sphere (haversine, radius 6371.0088 km). Mean, median, root mean square and 90th percentile of the error
in km and in pixels; with a predicted spread (sigma, px) the share of true centres inside the 50 % and 90 %
radii (coverage_50, coverage_90: the Gaussian's radii, or the model's calibrated radius factors); with a baseline centre the same statistics for that constant guess.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `list` of `float`): [N, 2] predicted centre (x, y) in tile pixels (x = column from the
        west edge, y = row from the top), or [N, 3] with the centre spread (sigma, px) as third value.
    references (`list` of `list` of `float`): [N, 2] true centre (x, y) in tile pixels.
    x0, y0 (`list` of `int`): [N] each clip's tile offset in grid pixels (the clip index's x0 / y0 columns).
    grid (`dict`): the frames' pixel grid, SeviriGrid.to_dict() (a model's config.grid, or "grid" of the
        grid.json that medicane-hf synth writes); required: it turns pixels into km.
    baseline_xy (`list` of 2 `float`, optional): a constant guess (x, y) in tile pixels measured beside the model.
    radius_factors (`dict`, optional): {"0.5": f, "0.9": f}, the 50 % / 90 % radius per unit of spread, a
        model's config.tracking_radius_factors (chosen on validation); default: the Gaussian's.

Returns:
    A dict of floats: count, mean_km, median_km, rms_km, p90_km, nonfinite_km, the same in px; with a spread
    coverage_50, coverage_90, median_spread_px; with a baseline baseline_mean_km, baseline_median_km, ...

Examples:
    >>> import evaluate
    >>> from medicane_hf.data.geo import SeviriGrid
    >>> from medicane_hf.metrics import module_path
    >>> tracking = evaluate.load(module_path("medicane_tracking"))
    >>> scores = tracking.compute(predictions=[[30.0, 32.0]], references=[[32.0, 32.0]], x0=[600], y0=[200],
    ...                           grid=SeviriGrid().to_dict())
    >>> scores["median_px"]
    2.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MedicaneTracking(evaluate.Metric):
    """Medicane centre errors in km and px (`medicane_hf.metrics.scores.tracking_scores`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.List(datasets.Value("float64")),
                    "references": datasets.List(datasets.Value("float64")),
                    "x0": datasets.Value("int64"),
                    "y0": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, x0, y0, grid=None, baseline_xy=None, radius_factors=None):
        if grid is None:
            raise ValueError(
                "grid: required, the frames' pixel grid as SeviriGrid.to_dict() (a model's config.grid): it "
                "turns pixels into km"
            )
        return tracking_scores(
            predictions, references, x0, y0, grid=grid, baseline_xy=baseline_xy, radius_factors=radius_factors
        )
