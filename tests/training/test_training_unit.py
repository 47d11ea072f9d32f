"""Training building blocks: arguments, parameter groups, schedules, checkpoints, model loading."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerControl, TrainerState

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection, MedicaneVideoMAEForPreTraining
from medicane_hf.processing_medicane import ContractMismatchError, DataContract
from medicane_hf.tasks import TASKS
from medicane_hf.training.arguments import (
    ArgumentFileError,
    ModelArguments,
    arguments_as_dict,
    config_overrides,
    help_epilog,
    make_parser,
    parse_arguments,
    parse_stage_arguments,
    save_arguments,
    stage_defaults,
    validate_arguments,
)
from medicane_hf.training.callbacks import WeightDecayScheduleCallback
from medicane_hf.training.checkpoints import (
    COMPLETE_MARKER,
    last_complete_checkpoint,
    mark_complete,
    remove_incomplete_checkpoints,
)
from medicane_hf.training.class_weights import balanced_class_weights, parse_class_weights
from medicane_hf.training.models import EncoderNotLoadedError, build_model
from medicane_hf.training.optim import cosine_value, parameter_groups, scaled_learning_rate
from medicane_hf.training.run import DatasetTooSmallError, check_train_size


def tiny_contract(**changes) -> DataContract:
    """The data contract of a 64 px, 16-frame, 3-channel dataset."""
    contract = DataContract(
        grid={"width": 384, "height": 128},
        tiles={"tile_size": 64, "stride_x": 64, "stride_y": 64},
        image_size=64,
        num_channels=3,
        num_frames=16,
        frame_interval_minutes=5,
        image_mean=(0.4, 0.5, 0.6),
        image_std=(0.2, 0.25, 0.3),
        class_names=("background", "medicane"),
    )
    return dataclasses.replace(contract, **changes)


# ---------------------------------------------------------------------------------------------- arguments


def test_yaml_then_flags_override_and_stage_defaults_sit_below(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 0.002\nper_device_train_batch_size: 3\nlayer_decay: 0.6\npreset: small\n")
    args = parse_arguments(
        [str(path), "--learning_rate", "0.01"], stage_defaults(TASKS["detection"], quick=False)
    )
    assert args.training.learning_rate == pytest.approx(0.01)  # flag beats file
    assert args.training.per_device_train_batch_size == 3  # file beats stage default
    assert args.recipe.layer_decay == pytest.approx(0.6)
    assert args.model.preset == "small"
    assert args.training.adam_beta2 == pytest.approx(0.95)  # the recipe's default
    assert args.training.metric_for_best_model == "balanced_accuracy"


def test_unknown_yaml_key_is_an_error_naming_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learning_rate: 0.1\nlearnig_rate: 0.2\n")
    with pytest.raises(ArgumentFileError, match=r"bad\.yaml.*'learnig_rate'"):
        parse_arguments([str(path)])


def test_help_documents_every_recipe_argument():
    text = make_parser().format_help()
    for flag in (
        "--layer_decay",
        "--scale_lr",
        "--warmup_epochs",
        "--model_ema",
        "--class_weights",
        "--dataset_dir",
    ):
        assert flag in text
    assert "total_batch / 256" in text


@pytest.mark.parametrize("stage", list(TASKS))
def test_help_lists_exactly_what_a_run_with_no_arguments_changes(stage):
    task = TASKS[stage]
    epilog = help_epilog(task)
    listed = epilog.split("tiny model) uses:")[1].split("\n\n")[0].split("It starts from")[0].split()
    shown = dict(token.split("=", 1) for token in listed)
    no_arguments = arguments_as_dict(parse_stage_arguments(task, []))
    with_flags = arguments_as_dict(parse_stage_arguments(task, ["--seed", str(task.recipe["seed"])]))
    assert {key: str(no_arguments[key]) for key in shown} == shown  # each figure is the one that run uses
    assert {key for key in no_arguments if no_arguments[key] != with_flags[key]} == set(shown)  # none missing
    assert "max_steps" in shown and shown["output_dir"] == f"outputs/{stage}-tiny-default"


def test_help_after_a_config_file_shows_the_file_values(capsys):
    config = str(Path(__file__).resolve().parents[2] / "configs" / "detection" / "small.yaml")
    with pytest.raises(SystemExit) as stopped:
        parse_stage_arguments(TASKS["detection"], [config, "--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    # small.yaml's batch, not the 8 of the recipe
    assert "The batch size per device for training. (default: 32)" in text
    assert f"Defaults above: {config}, and the detection recipe" in text


def test_saved_arguments_parse_back_to_the_same_run(tmp_path):
    args = parse_arguments(
        ["--learning_rate", "0.003", "--layer_decay", "0.7", "--output_dir", str(tmp_path / "o")]
    )
    save_arguments(args, tmp_path, effective={"learning_rate": 0.003})
    again = parse_arguments([str(tmp_path / "training_arguments.yaml")])
    assert again.training.learning_rate == pytest.approx(0.003)
    assert again.recipe.layer_decay == pytest.approx(0.7)
    assert json.loads((tmp_path / "effective_settings.json").read_text())["learning_rate"] == 0.003


def test_config_overrides_from_flag_string():
    overrides = config_overrides(
        ModelArguments(config_overrides="hidden_dropout_prob=0.1,norm_pix_loss=false")
    )
    assert overrides == {"hidden_dropout_prob": 0.1, "norm_pix_loss": False}
    with pytest.raises(ValueError, match="key=value"):
        config_overrides(ModelArguments(config_overrides="oops"))


# ---------------------------------------------------------------------------------------------- optimizer


def test_parameter_groups_layer_decay_and_no_decay_sets():
    model = MedicaneVideoMAEForPreTraining(MedicaneVideoMAEConfig.from_preset("tiny"))
    groups = parameter_groups(model, learning_rate=1.0, weight_decay=0.05, layer_decay=0.5)
    by_name = {name: group for group in groups for name in group["param_names"]}
    layers = model.config.num_hidden_layers
    assert by_name["videomae.embeddings.patch_embeddings.projection.weight"]["lr"] == pytest.approx(
        0.5 ** (layers + 1)
    )
    assert by_name["videomae.encoder.layer.0.attention.attention.query.weight"]["lr"] == pytest.approx(
        0.5**layers
    )
    assert by_name[f"videomae.encoder.layer.{layers - 1}.output.dense.weight"]["lr"] == pytest.approx(0.5)
    assert (
        by_name["decoder.head.weight" if "decoder.head.weight" in by_name else "encoder_to_decoder.weight"][
            "lr"
        ]
        == 1.0
    )
    for name in (
        "mask_token",
        "videomae.encoder.layer.0.attention.attention.q_bias",
        "videomae.encoder.layer.0.layernorm_before.weight",
    ):
        assert by_name[name]["weight_decay"] == 0.0, name
    assert by_name["videomae.encoder.layer.0.intermediate.dense.weight"]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


def test_lr_scaling_and_cosine_weight_decay():
    assert scaled_learning_rate(1e-3, 512) == pytest.approx(2e-3)
    assert cosine_value(0.05, 0.2, 0, 100) == pytest.approx(0.05)
    assert cosine_value(0.05, 0.2, 50, 100) == pytest.approx(0.125)
    assert cosine_value(0.05, 0.2, 100, 100) == pytest.approx(0.2)
    groups = [
        {"weight_decay": 0.05, "base_weight_decay": 0.05},
        {"weight_decay": 0.0, "base_weight_decay": 0.0},
    ]
    state = TrainerState(global_step=50, max_steps=100)
    WeightDecayScheduleCallback(0.05, 0.2).on_step_begin(
        None, state, TrainerControl(), optimizer=type("O", (), {"param_groups": groups})()
    )
    assert groups[0]["weight_decay"] == pytest.approx(0.125)
    assert groups[1]["weight_decay"] == 0.0


# ---------------------------------------------------------------------------------------------- checkpoints and data checks


def test_incomplete_checkpoint_is_skipped_and_removed(tmp_path):
    for step in (2, 4, 6):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_text("x")
        if step != 6:  # checkpoint-6: killed while saving
            mark_complete(folder, step)
    (tmp_path / "checkpoint-4" / "model.safetensors").unlink()  # listed in the marker but gone
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    removed = remove_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in removed) == ["checkpoint-4", "checkpoint-6"]
    assert (tmp_path / "checkpoint-2" / COMPLETE_MARKER).is_file()
    assert last_complete_checkpoint(tmp_path / "nothing") is None


def test_dataset_smaller_than_one_global_batch_is_a_clear_error():
    args = parse_arguments(
        ["--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2", "--use_cpu"]
    )
    assert check_train_size(16, args) == 16
    with pytest.raises(
        DatasetTooSmallError, match=r"15 clips.*8 per device x 1 processes x 2 accumulation = 16"
    ):
        check_train_size(15, args)


def test_balanced_class_weights():
    labels = np.array([0] * 90 + [1] * 10)
    weights = balanced_class_weights(labels, 2)
    assert weights == pytest.approx([100 / 180, 100 / 20])
    with pytest.raises(ValueError, match=r"no clip of class \[2\]"):
        balanced_class_weights(labels, 3)
    assert parse_class_weights("1,3", None, 2) == [1.0, 3.0]
    assert parse_class_weights(None, None, 2) is None


# ---------------------------------------------------------------------------------------------- model building


def test_from_scratch_model_takes_the_dataset_contract():
    args = ModelArguments(preset="tiny", drop_path_rate=0.1, mask_ratio=0.9)
    model, report = build_model(TASKS["specialization"], args, tiny_contract(num_frames=8))
    assert report is None
    assert model.config.num_frames == 8
    assert model.config.image_mean == pytest.approx([0.4, 0.5, 0.6])
    assert model.config.encoder_mask_ratio == 0.9 and model.config.drop_path_rate == 0.1
    assert model.config.tiles["tile_size"] == 64


def test_detection_loads_the_specialized_encoder_and_reports_the_rest(tmp_path):
    pretrained = MedicaneVideoMAEForPreTraining(MedicaneVideoMAEConfig.from_preset("tiny"))
    pretrained.save_pretrained(tmp_path / "mae")
    model, report = build_model(
        TASKS["detection"],
        ModelArguments(model_name_or_path=str(tmp_path / "mae")),
        tiny_contract(),
        label_smoothing=0.1,
        class_weights=[1.0, 4.0],
    )
    assert isinstance(model, MedicaneVideoMAEForDetection)
    key = "videomae.encoder.layer.3.attention.attention.query.weight"
    assert torch.equal(model.state_dict()[key], pretrained.state_dict()[key])
    assert {k.split(".")[0] for k in report.newly_initialised} == {"classifier", "fc_norm"}
    assert any(k.startswith("decoder.") for k in report.unused)
    assert model.config.label_smoothing == 0.1 and model.config.class_weights == [1.0, 4.0]
    assert model.config.image_std == pytest.approx([0.2, 0.25, 0.3])


def test_a_loaded_model_keeps_its_patch_embedding_and_says_so(tmp_path, caplog):
    # the specialization recipe asks for a conv stem; a converted VideoMAE v2 checkpoint holds a linear one
    MedicaneVideoMAEForPreTraining(MedicaneVideoMAEConfig.from_preset("tiny")).save_pretrained(tmp_path)
    args = ModelArguments(model_name_or_path=str(tmp_path), patch_embedding="conv")
    with caplog.at_level("WARNING", logger="medicane_hf.training.models"):
        model, report = build_model(TASKS["specialization"], args, tiny_contract())
    assert model.config.patch_embedding == "linear"
    assert "patch_embedding=linear; kept it (the requested conv applies to new models only)" in caplog.text
    assert not report.newly_initialised  # every encoder weight came from the checkpoint
    new_model, _ = build_model(
        TASKS["specialization"], ModelArguments(patch_embedding="conv"), tiny_contract()
    )
    assert new_model.config.patch_embedding == "conv"


def test_encoder_that_did_not_load_is_an_error(tmp_path):
    # The old system's bug: keys under another prefix load nothing and strict=False hides it.
    model = MedicaneVideoMAEForDetection(MedicaneVideoMAEConfig.from_preset("tiny"))
    model.base_model_prefix = "videomae"
    state = {k.replace("videomae.", "encoder."): v for k, v in model.state_dict().items()}
    from safetensors.torch import save_file

    model.config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(EncoderNotLoadedError, match="none of the .* encoder weights loaded"):
        build_model(TASKS["detection"], ModelArguments(model_name_or_path=str(tmp_path)), tiny_contract())


def test_model_with_another_clip_shape_is_refused(tmp_path):
    MedicaneVideoMAEForDetection(MedicaneVideoMAEConfig.from_preset("tiny")).save_pretrained(tmp_path)
    with pytest.raises(ContractMismatchError, match=r"num_frames: model 16, dataset 8"):
        build_model(
            TASKS["tracking"], ModelArguments(model_name_or_path=str(tmp_path)), tiny_contract(num_frames=8)
        )


def test_every_stage_declares_its_best_metric():
    assert {name: (t.metric_for_best_model, t.greater_is_better) for name, t in TASKS.items()} == {
        "specialization": ("loss", False),
        "detection": ("balanced_accuracy", True),
        "tracking": ("median_km", False),
    }
    assert math.isclose(TASKS["specialization"].recipe["learning_rate"], 1e-3)


@pytest.mark.parametrize("stage_folder", ["specialization", "detection", "tracking"])
@pytest.mark.parametrize("preset", ["tiny", "small", "base", "giant"])
def test_every_shipped_config_parses(stage_folder, preset):
    path = Path(__file__).resolve().parents[2] / "configs" / stage_folder / f"{preset}.yaml"
    stage = stage_folder  # configs/<stage>/: one name per stage
    # --use_cpu: the GPU presets ask for bf16, which TrainingArguments checks against the machine
    args = parse_arguments([str(path), "--use_cpu"], stage_defaults(TASKS[stage], quick=False))
    assert args.model.preset == preset
    assert args.training.adam_beta2 == pytest.approx(0.95)
    assert args.training.metric_for_best_model == TASKS[stage].metric_for_best_model


@pytest.mark.parametrize("stage", ["specialization", "detection", "tracking"])
def test_every_skill_config_parses_and_builds_its_model_config(stage):
    """configs/skill/ is the recipe bench_skill trains and docs/skill.md tells a user to run: each file parses
    for its stage, passes the checks a run makes, and its config overrides make a valid model config."""
    path = Path(__file__).resolve().parents[2] / "configs" / "skill" / f"{stage}.yaml"
    args = parse_arguments([str(path)], stage_defaults(TASKS[stage], quick=False))
    validate_arguments(args)
    assert args.model.preset == "tiny"
    assert args.training.metric_for_best_model == TASKS[stage].metric_for_best_model
    overrides = config_overrides(args.model)
    # the stem every skill stage shares (specialization sets it with its own flag)
    assert overrides.get("patch_embedding", args.model.patch_embedding) == "conv"
    config = MedicaneVideoMAEConfig.from_preset("tiny", **overrides)
    assert all(getattr(config, key) == value for key, value in overrides.items())


def test_augmentation_flags_reach_the_train_datasets(dataset_dir, tmp_path):
    from medicane_hf.training.run import load_data

    def train_split(stage: str, *flags: str):
        args = parse_arguments(
            ["--dataset_dir", str(dataset_dir), "--output_dir", str(tmp_path), *flags],
            stage_defaults(TASKS[stage], quick=True),
        )
        splits = load_data(TASKS[stage], args)[2]
        assert splits["validation"].max_shift == 0  # evaluation tiles never move
        return getattr(splits["train"], "dataset", splits["train"])  # detection: the oversampling Subset

    assert train_split("detection").max_shift == 16  # a quarter of the 64-px tile
    assert train_split("detection", "--train_max_shift", "0").max_shift == 0
    tracking = train_split("tracking")
    assert tracking.max_shift == 16 and tracking.rot90
    tracking = train_split("tracking", "--train_max_shift", "5", "--train_rot90", "false")
    assert tracking.max_shift == 5 and not tracking.rot90
