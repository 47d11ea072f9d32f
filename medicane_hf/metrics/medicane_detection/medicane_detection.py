"""`evaluate` module: the Medicane detection scores of medicane-hf (training, batch inference, metrics.json).

evaluate copies this file into its cache before importing it, so it imports the installed ``medicane_hf``
package by absolute import (``pip install medicane-hf``); the scores come from `medicane_hf.metrics.scores`,
which calls the stage registry's own metric function: no formula lives here.
"""

import datasets
import evaluate

from medicane_hf.metrics.scores import CITATION, detection_scores

_DESCRIPTION = """\
Scores of a Medicane (Mediterranean tropical-like cyclone) detector over a set of clips, from its logits: the
exact figures medicane-hf writes during training and batch inference. Accuracy, balanced accuracy (mean recall
over the classes present), the recall of each class, the cyclone-vs-rest scores of forecast verification
(POD = TP / (TP + FN), FAR = FP / (TP + FP), CSI = TP / (TP + FP + FN), the Heidke skill score HSS), precision,
F1, the precision-recall AUC (average precision), ROC AUC, the expected calibration error (ECE, 10 bins) of the
Medicane probability softmax(logits / temperature), and the confusion matrix as cm_<true>_<predicted>.
Undefined ratios (POD without a Medicane clip) are NaN.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `list` of `float`): [N, C] logits, one row of C class scores per clip.
    references (`list` of `int`): [N] true class ids (0 background, 1 medicane, 2 neighbouring).
    class_names (`list` of `str`, optional): one per class; default ["background", "medicane"].
    temperature (`float`, optional): softmax temperature, a model's config.detection_temperature; default 1.
    threshold (`float`, optional): the Medicane probability from which a clip is a Medicane, a model's
        config.detection_threshold; default None: the arg-max class.

Returns:
    A dict of floats: accuracy, balanced_accuracy, recall_<class>, pod, far, csi, hss, precision, f1,
    average_precision, roc_auc, ece, num_samples, tp, fp, fn, tn, cm_<i>_<j>.

Examples:
    >>> import evaluate
    >>> from medicane_hf.metrics import module_path
    >>> detection = evaluate.load(module_path("medicane_detection"))
    >>> scores = detection.compute(predictions=[[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]], references=[0, 1, 1])
    >>> round(scores["pod"], 3), round(scores["far"], 3)
    (0.5, 0.0)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MedicaneDetection(evaluate.Metric):
    """Medicane detection scores from logits (`medicane_hf.metrics.scores.detection_scores`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.List(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, class_names=None, temperature=1.0, threshold=None):
        return detection_scores(
            predictions, references, class_names=class_names, temperature=temperature, threshold=threshold
        )
