"""`--model_name_or_path` that cannot be used: one true line each, before any training (issue 11, item 8)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import MedicaneVideoMAEForPreTraining
from medicane_hf.processing_medicane import read_dataset_contract
from medicane_hf.tasks import TASKS
from medicane_hf.training.arguments import ModelArguments
from medicane_hf.training.models import EncoderNotLoadedError, ModelSourceError, build_model, loading_report
from medicane_hf.training.run import main
from tests.runs import quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DETECTION = TASKS["detection"]


def _build(source, dataset_dir):
    return build_model(
        DETECTION, ModelArguments(model_name_or_path=str(source)), read_dataset_contract(dataset_dir)
    )


def test_a_folder_that_does_not_exist(dataset_dir, tmp_path, capfd):
    """It gave a raw OSError traceback (transformers looked it up on the Hub)."""
    missing = tmp_path / "outputs" / "specialization-small" / "best"
    assert (
        main("detection", [*quick_flags(dataset_dir, tmp_path / "run"), "--model_name_or_path", str(missing)])
        == 2
    )
    err = capfd.readouterr().err
    assert f"--model_name_or_path {missing}: no such folder" in err and "Traceback" not in err


def test_a_folder_without_a_config(dataset_dir, tmp_path):
    (tmp_path / "weights.pth").write_bytes(b"")
    with pytest.raises(ModelSourceError, match="holds no config.json.*medicane-hf convert"):
        _build(tmp_path, dataset_dir)


def test_a_config_without_weights(dataset_dir, tmp_path):
    MedicaneVideoMAEConfig.from_preset("tiny").save_pretrained(tmp_path)
    with pytest.raises(ModelSourceError, match="has a config.json but no weights"):
        _build(tmp_path, dataset_dir)


def test_a_model_of_another_family(dataset_dir, tmp_path):
    """A BERT folder was reported as expecting "16 frames of 224x224", values it never had."""
    from transformers import BertConfig

    BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    ).save_pretrained(tmp_path)
    with pytest.raises(ModelSourceError, match="is a bert model, not a VideoMAE") as raised:
        _build(tmp_path, dataset_dir)
    assert "224" not in str(raised.value)


def test_a_hub_id_that_cannot_be_reached(dataset_dir):
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        pytest.skip(
            "asks the Hub: only offline (tests/conftest.py sets HF_HUB_OFFLINE=1 unless told otherwise)"
        )
    with pytest.raises(
        ModelSourceError, match="not a folder here, and with HF_HUB_OFFLINE=1 the Hub is not asked"
    ):
        _build("nobody-here/no-such-model", dataset_dir)


def test_the_encoder_count_says_how_many_did_not_load():
    """ "11 of the 17 encoder weights loaded" counted the ones that were *not* loaded."""
    model = MedicaneVideoMAEForPreTraining(MedicaneVideoMAEConfig.from_preset("tiny"))
    encoder = [name for name, _ in model.named_parameters() if name.startswith("videomae.")]
    with pytest.raises(EncoderNotLoadedError) as raised:
        loading_report(model, {"missing_keys": encoder[:3]}, "somewhere")
    assert f"3 of the {len(encoder)} encoder weights did not load" in str(raised.value)
    with pytest.raises(EncoderNotLoadedError, match=f"none of the {len(encoder)} encoder weights loaded"):
        loading_report(model, {"missing_keys": encoder}, "somewhere")


def test_a_good_folder_still_loads_with_one_line_about_it(dataset_dir, tmp_path):
    """transformers printed a table of every decoder key (UNEXPECTED) and head key (MISSING) as warnings for
    this, the expected load of a specialization model into a detection head."""
    contract = read_dataset_contract(dataset_dir)
    model = MedicaneVideoMAEForPreTraining(
        MedicaneVideoMAEConfig.from_preset("tiny", **contract.shape_settings(), **contract.config_settings())
    )
    model.save_pretrained(tmp_path)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        detector, report = _build(tmp_path, dataset_dir)
    finally:
        transformers_logger.removeHandler(handler)
    assert not [r for r in records if "UNEXPECTED" in r.getMessage() or "MISSING" in r.getMessage()]
    assert (
        report.loaded > 0
        and json.loads((tmp_path / "config.json").read_text())["model_type"] == "medicane_videomae"
    )
    assert type(detector).__name__ == "MedicaneVideoMAEForDetection"


def test_a_configs_outputs_path_is_found_under_the_output_root_given(tmp_path):
    """configs/ name the specialization model `outputs/...-small/best`, relative to the current folder; a run
    writing under another root (`--output_dir ROOT/detection-small`) finds it under ROOT."""
    from medicane_hf.training.arguments import parse_stage_arguments
    from medicane_hf.training.run import resolve_under_output_root

    (tmp_path / "runs" / "specialization-probe" / "best").mkdir(parents=True)
    args = parse_stage_arguments(DETECTION, ["--output_dir", str(tmp_path / "runs" / "detection-probe")])
    found = resolve_under_output_root("outputs/specialization-probe/best", args)
    assert found == str(tmp_path / "runs" / "specialization-probe" / "best")
    # nothing there either: the path stays as given, and the run says "no such folder" for it
    assert resolve_under_output_root("outputs/nothing-probe/best", args) == "outputs/nothing-probe/best"
