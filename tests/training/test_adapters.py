"""Small adapters: `--freeze_backbone` trains the head only; LoRA (`--lora_rank`) saves a small adapter folder
that rebuilds the fine-tuned model on its base checkpoint; flags no run can use are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking
from medicane_hf.tasks import get_task
from medicane_hf.training.adapters import ADAPTER_DIR
from medicane_hf.training.arguments import ArgumentValueError, parse_stage_arguments, validate_arguments
from medicane_hf.training.models import ModelSourceError, check_model_source
from medicane_hf.training.resume import RESUME_FREE_KEYS, argument_differences
from medicane_hf.training.run import main
from tests.runs import quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a learning rate that moves 4 steps' weights visibly (the recipe's, scaled to a batch of 2, barely does)
FAST = ["--learning_rate", "3e-3", "--scale_lr", "false", "--warmup_steps", "0"]


@pytest.fixture(scope="module")
def base_model(dataset_dir, tmp_path_factory) -> Path:
    """A specialization run's best/: the base checkpoint every adapter here starts from."""
    output_dir = tmp_path_factory.mktemp("specialization")
    assert main("specialization", quick_flags(dataset_dir, output_dir, steps=2)) == 0
    return output_dir / "best"


class InitialWeights(TrainerCallback):
    """Keeps a copy of the model's weights as training starts."""

    state: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: D102
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_freeze_backbone_changes_the_head_only(base_model, dataset_dir, tmp_path):
    initial = InitialWeights()
    flags = quick_flags(dataset_dir, tmp_path) + FAST
    assert main("detection", [*flags, "--model_name_or_path", str(base_model), "--freeze_backbone"], [initial]) == 0
    trained = load_file(str(tmp_path / "final" / "model.safetensors"))
    base = load_file(str(base_model / "model.safetensors"))
    encoder = [key for key in trained if key.startswith("videomae.")]
    head = [key for key in trained if not key.startswith("videomae.")]
    assert encoder and head
    for key in encoder:  # bit for bit the base checkpoint's, as at the start
        assert torch.equal(trained[key], base[key]), key
        assert torch.equal(trained[key], initial.state[key]), key
    changed = [key for key in head if not torch.equal(trained[key], initial.state[key])]
    assert {key.split(".")[0] for key in changed} == {key.split(".")[0] for key in head}  # every head module trained
    counts = json.loads((tmp_path / "effective_settings.json").read_text())["parameters"]
    assert counts["trainable"] == sum(trained[key].numel() for key in head)
    assert counts["total"] == sum(value.numel() for value in trained.values())
    assert not (tmp_path / "final" / ADAPTER_DIR).exists()


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _clips(dataset_dir: Path, stage: str, count: int = 4) -> torch.Tensor:
    dataset = load_clip_datasets(dataset_dir, stage, ("validation",))["validation"]
    return torch.stack([dataset[i]["pixel_values"] for i in range(count)])


@pytest.mark.parametrize(
    ("stage", "model_class", "output"),
    [("detection", MedicaneVideoMAEForDetection, "logits"), ("tracking", MedicaneVideoMAEForTracking, "logits")],
)
def test_lora_adapter_is_small_and_rebuilds_the_fine_tuned_model(
    base_model, dataset_dir, tmp_path, stage, model_class, output
):
    from peft import PeftConfig, PeftModel

    flags = quick_flags(dataset_dir, tmp_path) + FAST + ["--model_name_or_path", str(base_model)]
    assert main(stage, [*flags, "--lora_rank", "4", "--lora_target_modules", "query,value"]) == 0
    best = tmp_path / "best"
    adapter = best / ADAPTER_DIR
    # the adapter, its weights and the calibrated config (with the config's code, so it loads without this package);
    # no model weights
    assert {p.name for p in adapter.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "config.json",
        "configuration_medicane.py",
    }
    assert PeftConfig.from_pretrained(adapter).base_model_name_or_path == str(base_model)
    # the adapter (LoRA matrices and the head) is a small part of the full model folder
    full = _folder_bytes(best) - _folder_bytes(adapter)
    assert _folder_bytes(adapter) < 0.1 * full, (_folder_bytes(adapter), full)

    merged = model_class.from_pretrained(best).eval()
    base = model_class.from_pretrained(base_model, config=MedicaneVideoMAEConfig.from_pretrained(adapter))
    rebuilt = PeftModel.from_pretrained(base, adapter).eval()
    clips = _clips(dataset_dir, stage)
    with torch.no_grad():
        expected, got = getattr(merged(clips), output), getattr(rebuilt(clips), output)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    # LoRA moved the targeted projections and nothing else of the encoder
    trained, start = load_file(str(best / "model.safetensors")), load_file(str(base_model / "model.safetensors"))
    layer = "videomae.encoder.layer.0.attention"
    assert not torch.equal(trained[f"{layer}.attention.query.weight"], start[f"{layer}.attention.query.weight"])
    assert not torch.equal(trained[f"{layer}.attention.value.weight"], start[f"{layer}.attention.value.weight"])
    for key in trained:
        if key.startswith("videomae.") and not key.endswith(("query.weight", "value.weight")):
            assert torch.equal(trained[key], start[key]), key
    counts = json.loads((tmp_path / "effective_settings.json").read_text())["parameters"]
    assert 0 < counts["trainable_share"] < 0.5
    with pytest.raises(ModelSourceError, match="is a LoRA adapter folder, not a model; give the merged model"):
        check_model_source(str(adapter))  # as --model_name_or_path of another run


def test_lora_run_resumes_from_its_checkpoint(base_model, dataset_dir, tmp_path):
    flags = quick_flags(dataset_dir, tmp_path, steps=2) + FAST + ["--model_name_or_path", str(base_model)]
    assert main("detection", [*flags, "--lora_rank", "2"]) == 0
    longer = quick_flags(dataset_dir, tmp_path, steps=4) + FAST + ["--model_name_or_path", str(base_model)]
    assert main("detection", [*longer, "--lora_rank", "2"]) == 0
    effective = json.loads((tmp_path / "effective_settings.json").read_text())
    assert effective["resumed_from"].endswith("checkpoint-2")
    # another rank is another run: refused, by name
    assert main("detection", [*longer, "--lora_rank", "3"]) == 2


def test_adapter_flags_are_run_shaping():
    for key in ("freeze_backbone", "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules"):
        assert key not in RESUME_FREE_KEYS
    assert argument_differences({"lora_rank": 4}, {"lora_rank": 8}) == ["lora_rank: checkpoint 4, now 8"]
    assert argument_differences({"freeze_backbone": False}, {"freeze_backbone": True}) == [
        "freeze_backbone: checkpoint False, now True"
    ]


@pytest.mark.parametrize(
    ("stage", "flags", "message"),
    [
        ("specialization", ["--lora_rank", "4"], "--lora_rank 4: the specialization stage trains the encoder"),
        ("specialization", ["--freeze_backbone"], "--freeze_backbone: the specialization stage trains"),
        ("detection", ["--model_name_or_path", "m", "--lora_rank", "0"], "--lora_rank 0: must be 1 or more"),
        ("tracking", ["--lora_rank", "4"], "--lora_rank 4: adapts a trained encoder; give it with --model_name"),
        (
            "detection",
            ["--model_name_or_path", "m", "--lora_rank", "4", "--freeze_backbone"],
            "--freeze_backbone with --lora_rank 4: LoRA already keeps",
        ),
        ("detection", ["--model_name_or_path", "m", "--lora_alpha", "8"], "--lora_alpha 8.0: LoRA is off"),
        (
            "detection",
            ["--model_name_or_path", "m", "--lora_rank", "2", "--lora_dropout", "1"],
            "--lora_dropout 1.0: must be in [0, 1)",
        ),
    ],
)
def test_bad_adapter_flags_are_refused_by_name(stage, flags, message):
    args = parse_stage_arguments(get_task(stage), ["--output_dir", "unused", *flags])
    with pytest.raises(ArgumentValueError) as error:
        validate_arguments(args)
    problems = str(error.value).splitlines()[1:]
    assert len(problems) == 1 and problems[0].strip().startswith(message), problems


def test_a_lora_target_naming_no_layer_is_refused(base_model, dataset_dir, tmp_path, capfd):
    flags = quick_flags(dataset_dir, tmp_path) + ["--model_name_or_path", str(base_model), "--lora_rank", "2"]
    assert main("detection", [*flags, "--lora_target_modules", "query,qkv"]) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "--lora_target_modules qkv: names no Linear layer of the encoder" in err and "Traceback" not in err
    assert "attention.attention.query" in err  # the names that exist
