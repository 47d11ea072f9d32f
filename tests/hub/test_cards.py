"""Model cards: valid Hub front matter, only computed metrics, the synthetic warning, a snippet that runs."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from medicane_hf.hub.cards import CardTemplateError, TrainingData, write_folder_card
from tests.hub.folders import save_heads

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METRICS = {"eval_balanced_accuracy": 0.75, "eval_pod": float("nan"), "eval_runtime": 1.5, "test_csi": 0.25,
           "test_loss": 0.5, "global_step": 4}  # fmt: skip


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    return save_heads(tmp_path_factory.mktemp("cards"))


def synthetic_data(root: Path) -> TrainingData:
    (root / "source").mkdir(parents=True, exist_ok=True)
    (root / "source" / "recipe.json").write_text("{}")
    info = {"class_names": ["background", "medicane"], "inputs": {"frames_dir": str(root / "source" / "frames")},
            "counts": {"train": {"clips": 10, "label_0": 8, "label_1": 2}, "test": {"clips": 5, "label_0": 4, "label_1": 1},
                       "pretrain": {"windows": 3}},
            "storms": {"train": ["Aiolos (s1)"], "test": ["Boreas (s2)"], "never_on_grid": []}}  # fmt: skip
    (root / "dataset_info.json").write_text(json.dumps(info))
    return TrainingData.from_dataset(root)


def test_detection_card_metadata_and_text(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = folders["detection"]
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    data = synthetic_data(tmp_path / "data")
    assert data.synthetic and data.clips == {
        "train": {"background": 8, "medicane": 2},
        "test": {"background": 4, "medicane": 1},
    }
    path = write_folder_card(folder, "trained by a test", data, {"seed": 3}, base_model="org/encoder")
    card = ModelCard.load(path)
    meta = card.data
    assert meta.library_name == "transformers" and meta.pipeline_tag == "video-classification"
    assert meta.license == "apache-2.0" and meta.base_model == "org/encoder"
    assert {"medicane", "videomae", "synthetic-data"} <= set(meta.tags)
    # model-index: exactly the finite metrics that were computed, not timings, not NaN
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in meta.eval_results}
    assert results == {
        ("validation", "balanced_accuracy"): 0.75,
        ("test", "csi"): 0.25,
        ("test", "loss"): 0.5,
    }
    text = card.text
    assert "not for real forecasts" in text
    assert (
        "| balanced_accuracy | 0.75 |  |" in text and "pod" not in text.split("## Results")[1].split("##")[0]
    )
    assert "Aiolos (s1)" in text and "arXiv:2303.16727" in text and "Flaounas" in text
    assert "| seed | 3 |" in text and "0.3000, 0.4000, 0.5000" in text  # hyperparameters, the data contract


def test_card_snippet_runs(folders: dict[str, Path], tmp_path: Path) -> None:
    for name in ("detection", "tracking"):
        path = write_folder_card(folders[name], "trained by a test", synthetic_data(tmp_path / name))
        code = re.search(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL).group(1)
        assert f'model_id = "{folders[name].resolve()}"' in code
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), torch.no_grad():
            exec(compile(code, str(path), "exec"), {})
        assert "tensor(" in printed.getvalue(), name


def test_tracking_and_converted_cards(folders: dict[str, Path]) -> None:
    card = ModelCard.load(write_folder_card(folders["tracking"], "converted by a test"))
    assert card.data.pipeline_tag == "keypoint-detection" and card.data.eval_results is None
    assert "converted, not trained" in card.text and "No metrics were computed" in card.text
    card = ModelCard.load(write_folder_card(folders["pretraining"], "converted by a test"))
    assert "AutoModelForPreTraining" in card.text and card.data.base_model is None


def test_template_with_unknown_field_says_so_in_one_line(folders: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "detection.md").write_text(
        "---\n{{ card_data }}\n---\n# {{ model_name }} {{ storm_count }}\n"
    )
    with pytest.raises(CardTemplateError) as caught:
        write_folder_card(folders["detection"], "x", template_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "storm_count" in message and "detection.md" in message
    with pytest.raises(CardTemplateError, match="is not there"):
        write_folder_card(folders["tracking"], "x", template_dir=tmp_path)


def test_card_snippet_of_a_grid_position_detector_passes_the_tile_offset(tmp_path: Path) -> None:
    from medicane_hf.data.geo import SeviriGrid
    from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection
    from tests.hub.folders import tiny_config

    config = tiny_config(
        detection_pooling="heatmap", detection_position=True, grid=SeviriGrid(width=384, height=128).to_dict()
    )
    folder = tmp_path / "position"
    MedicaneVideoMAEForDetection(config).save_pretrained(folder)
    path = write_folder_card(folder, "trained by a test", synthetic_data(tmp_path / "data"))
    code = re.search(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL).group(1)
    assert "tile_offset=" in code  # without it the model refuses the call
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), torch.no_grad():
        exec(compile(code, str(path), "exec"), {})
    assert "tensor(" in printed.getvalue()


def test_the_card_and_predict_and_track_say_how_the_threshold_was_chosen(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.tracking.detect import threshold_rule

    folder = tmp_path / "detector"
    shutil.copytree(folders["detection"], folder)
    config = MedicaneVideoMAEConfig.from_pretrained(folder)
    config.detection_threshold, config.detection_threshold_rule = 0.42, "hss"
    config.save_pretrained(folder)
    text = ModelCard.load(write_folder_card(folder, "trained by a test", synthetic_data(tmp_path / "data"))).text
    assert "a Medicane at or above probability 0.42 (chosen on validation to maximise the Heidke skill score)" in text
    assert threshold_rule(None, config) == (
        "calibrated Medicane probability >= 0.42 (the detector's detection_threshold, chosen on validation to "
        "maximise the Heidke skill score)"
    )
    config.detection_threshold_rule = "balanced_accuracy"
    assert threshold_rule(None, config).endswith("to maximise balanced accuracy)")
    assert threshold_rule(0.3, config) == "calibrated Medicane probability >= 0.3 (--threshold)"
