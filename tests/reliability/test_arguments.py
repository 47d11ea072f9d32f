"""Arguments that cannot do what they say are refused or settled before anything is built (issue 11, items 5, 6,
9 and the first-contact list: step counts without their strategy, a best-model metric without its direction)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from medicane_hf.tasks import TASKS
from medicane_hf.training.arguments import ArgumentValueError, parse_stage_arguments, validate_arguments
from medicane_hf.training.run import main, plan_run
from tests.runs import quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DETECTION = TASKS["detection"]


def test_max_steps_zero_is_refused_and_trains_nothing(dataset_dir, tmp_path, capfd):
    """Item 5: `--max_steps 0` trained one step and saved best/."""
    out = tmp_path / "run"
    assert main("detection", [*quick_flags(dataset_dir, out), "--max_steps", "0"]) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "--max_steps 0" in err and "trains nothing" in err
    assert not out.exists()


def test_a_negative_learning_rate_is_named_before_anything_is_built(dataset_dir, tmp_path, capfd):
    """Item 9: a torch traceback quoted the scaled value (-3.9e-06), after the data and model were built."""
    out = tmp_path / "run"
    assert main("detection", [*quick_flags(dataset_dir, out), "--learning_rate", "-0.001"]) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "--learning_rate -0.001" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--num_train_epochs", "0", "--num_train_epochs 0"),
        ("--warmup_steps", "-3", "warmup_steps"),  # transformers' own check, in one line
        ("--weight_decay", "-0.1", "--weight_decay -0.1"),
        ("--layer_decay", "1.5", "--layer_decay 1.5"),
        ("--label_smoothing_factor", "1.0", "--label_smoothing_factor 1.0"),
        ("--max_train_samples", "0", "--max_train_samples 0"),
        ("--drop_path_rate", "1.2", "--drop_path_rate 1.2"),
        ("--model_ema_decay", "1.0", "--model_ema_decay 1.0"),
        ("--train_max_shift", "-1", "--train_max_shift -1"),
        ("--heatmap_label_noise", "-0.5", "--heatmap_label_noise -0.5"),
        ("--heatmap_target_sigma", "nan", "--heatmap_target_sigma nan"),
        ("--detection_threshold_rule", "f1", "--detection_threshold_rule f1: must be one of balanced_accuracy, hss"),
    ],
)
def test_values_outside_their_range_are_refused_by_name(flag, value, words):
    argv = ["--max_steps", "-1"] if flag == "--num_train_epochs" else []
    with pytest.raises(ArgumentValueError, match=words):
        validate_arguments(parse_stage_arguments(DETECTION, [*argv, flag, value]))


def test_the_labels_error_flag_reaches_the_tracking_models_config():
    """`--heatmap_label_noise` is a model setting: it lands in the config the run builds (and saves). The
    real-data recipe corrects for ERA5 labels' error; the no-argument run trains on the embedded default, whose
    labels are exact, and must not blur its map."""
    from medicane_hf.training.models import recipe_settings

    def label_noise(argv: list[str]) -> float:
        args = parse_stage_arguments(TASKS["tracking"], argv)
        validate_arguments(args)
        return recipe_settings(args.model, 0.0, None)["heatmap_label_noise"]

    assert label_noise(["--heatmap_label_noise", "1.5"]) == 1.5
    assert label_noise(["--max_steps", "10"]) == 4.0  # the recipe: ~15 km per axis on the real grid
    assert label_noise([]) == 0.0
    configs = Path(__file__).resolve().parents[2] / "configs"
    assert label_noise([str(configs / "tracking" / "tiny.yaml")]) == 0.0
    # small / base / giant (GPU, bf16: not parsed on this CPU) state the recipe's 4.0, tests/test_tasks.py


def test_the_threshold_rule_flag_reaches_the_detectors_config():
    """The detection recipe's threshold maximises the validation Heidke skill score; the flag picks balanced
    accuracy instead, and a model config built before the rule existed keeps balanced accuracy (what its saved
    threshold was chosen by)."""
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.training.models import recipe_settings

    def rule(argv: list[str]) -> str:
        args = parse_stage_arguments(DETECTION, argv)
        validate_arguments(args)
        return recipe_settings(args.model, 0.0, None)["detection_threshold_rule"]

    assert rule([]) == "hss"
    assert rule(["--detection_threshold_rule", "balanced_accuracy"]) == "balanced_accuracy"
    configs = Path(__file__).resolve().parents[2] / "configs"
    assert rule([str(configs / "detection" / "tiny.yaml")]) == rule([str(configs / "skill" / "detection.yaml")]) == "hss"
    assert MedicaneVideoMAEConfig().detection_threshold_rule == "balanced_accuracy"
    with pytest.raises(ValueError, match="detection_threshold_rule='f1'"):
        MedicaneVideoMAEConfig(detection_threshold_rule="f1")


def test_the_no_argument_run_is_its_presets_recipe_shortened():
    """The no-argument run trains the tiny preset: its settings are configs/<stage>/tiny.yaml's, not the real-data
    recipe's (it trained tracking with the real grid's 4-px target blur on the demo grid's 13-km pixels)."""
    import yaml

    checked = []
    for name, task in TASKS.items():
        args = parse_stage_arguments(task, [])
        tiny = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / name / "tiny.yaml").read_text())
        for key, value in task.preset_recipe.get("tiny", {}).items():
            if key in task.quick_run:
                continue  # the short schedule's own (e.g. detection's learning rate)
            parsed = getattr(args.model, key, getattr(args.data, key, getattr(args.training, key, None)))
            assert parsed == value == tiny[key], (name, key)
            checked.append((name, key))
    assert ("tracking", "heatmap_target_sigma") in checked


def test_every_shipped_recipe_passes_validation():
    for task in TASKS.values():
        validate_arguments(parse_stage_arguments(task, []))
        validate_arguments(parse_stage_arguments(task, ["--seed", "1"]))


def _plan(argv: list[str], train_clips: int = 16):
    args = parse_stage_arguments(DETECTION, argv)
    splits = {"train": list(range(train_clips)), "validation": [0], "test": [0]}
    return args, plan_run(DETECTION, args, splits, Path("unused"))


def test_warmup_longer_than_the_run_is_cut_to_it_and_said(caplog):
    """Item 6: 5 warmup epochs with --max_steps 6 gave 40 warmup steps here (2,125 on the default data) and a
    learning rate near zero for the whole run, silently."""
    with caplog.at_level(logging.WARNING, logger="medicane_hf.training"):
        args, plan = _plan(["--max_steps", "6", "--per_device_train_batch_size", "2"])
    assert plan.total_steps == 6
    assert plan.warmup_steps == 6 and args.training.get_warmup_steps(6) == 6
    assert "warmup of 40 steps is longer than the run's 6 steps: cut to 6" in caplog.text
    assert any("cut to 6" in note for note in plan.notes)


def test_warmup_within_the_run_is_kept():
    _, plan = _plan(["--num_train_epochs", "30", "--per_device_train_batch_size", "2"])
    assert plan.warmup_steps == 40 and plan.total_steps == 240 and plan.notes == []


def test_save_and_eval_steps_bring_their_strategy():
    """`--save_steps` / `--eval_steps` did nothing while the recipe's strategies stayed `epoch`."""
    args = parse_stage_arguments(DETECTION, ["--save_steps", "10", "--eval_steps", "5"])
    assert args.training.save_strategy == "steps" and args.training.save_steps == 10
    assert args.training.eval_strategy == "steps" and args.training.eval_steps == 5
    assert any("--save_steps 10" in note for note in args.notes)
    # a strategy given beside it is the user's choice
    args = parse_stage_arguments(DETECTION, ["--save_steps", "10", "--save_strategy", "epoch"])
    assert args.training.save_strategy == "epoch"


def test_a_step_count_on_the_command_line_outranks_the_config_files_strategy():
    args = parse_stage_arguments(
        DETECTION, ["configs/detection/small.yaml", "--bf16", "false", "--eval_steps", "500"]
    )
    assert args.training.eval_strategy == "steps" and args.training.eval_steps == 500


def test_a_best_model_metric_brings_its_direction():
    """`--metric_for_best_model loss` kept the recipe's greater_is_better=True: best/ was the highest loss."""
    assert (
        parse_stage_arguments(DETECTION, ["--metric_for_best_model", "loss"]).training.greater_is_better
        is False
    )
    tracking = TASKS["tracking"]
    assert (
        parse_stage_arguments(tracking, ["--metric_for_best_model", "mean_km"]).training.greater_is_better
        is False
    )
    assert (
        parse_stage_arguments(DETECTION, ["--metric_for_best_model", "far"]).training.greater_is_better
        is False
    )
    assert (
        parse_stage_arguments(DETECTION, ["--metric_for_best_model", "pod"]).training.greater_is_better
        is True
    )
    given = parse_stage_arguments(
        DETECTION, ["--metric_for_best_model", "loss", "--greater_is_better", "true"]
    )
    assert given.training.greater_is_better is True  # said explicitly: kept


def test_a_misspelt_config_override_is_refused_with_the_closest_names(dataset_dir, tmp_path, capfd):
    """A config takes any keyword: `tracking_target_sigma=1.0` (for heatmap_target_sigma) trained a whole run with
    the setting at its default and said nothing."""
    out = tmp_path / "run"
    flags = [*quick_flags(dataset_dir, out), "--config_overrides", "patch_embedding=conv,tracking_target_sigma=1.0"]
    assert main("tracking", flags) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "--config_overrides tracking_target_sigma: no such setting" in err
    assert "heatmap_target_sigma" in err and "patch_embedding" not in err.split("no such setting")[0]
    assert not out.exists()
