"""MedicaneTrainer on small in-memory datasets: stop on NaN, EMA, mixed precision, accumulation, best model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset
from transformers import TrainerCallback, TrainingArguments

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection
from medicane_hf.tasks import TASKS, MetricContext
from medicane_hf.training.checkpoints import is_complete, last_complete_checkpoint
from medicane_hf.training.trainer import EMA_WEIGHTS_NAME, MedicaneTrainer, NonFiniteLossError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyClips(Dataset):
    """Clips [4, 3, 32, 32]; class 1 has a bright first channel. `poisoned` turns every clip into NaNs."""

    def __init__(self, n: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 2
        self.x = torch.randn(n, 4, 3, 32, 32, generator=generator) * 0.3
        self.x[self.labels == 1, :, 0] += 1.0
        self.poisoned = False

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.x[i] * float("nan") if self.poisoned else self.x[i]
        return {"pixel_values": x, "labels": self.labels[i]}


def tiny_detector(seed: int = 0) -> MedicaneVideoMAEForDetection:
    torch.manual_seed(seed)
    config = MedicaneVideoMAEConfig.from_preset(
        "tiny",
        image_size=32,
        num_frames=4,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
    )
    return MedicaneVideoMAEForDetection(config)


def make_trainer(tmp_path, train, model=None, **overrides) -> MedicaneTrainer:
    settings = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "max_steps": 6,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_strategy": "steps",
        "save_steps": 3,
        "report_to": [],
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "metric_for_best_model": "balanced_accuracy",
        "disable_tqdm": True,
        "seed": 0,
    }
    trainer_kwargs = {
        k: overrides.pop(k) for k in ("ema_decay", "layer_decay", "callbacks") if k in overrides
    }
    settings.update(overrides)
    task = TASKS["detection"]
    context = MetricContext()
    return MedicaneTrainer(
        model=model or tiny_detector(),
        args=TrainingArguments(**settings),
        train_dataset=train,
        eval_dataset=ToyClips(8, seed=1),
        predictions_fn=task.predictions_fn,
        metrics_fn=lambda prediction, dataset: task.metrics_fn(prediction, dataset, context),
        best_dir=tmp_path / "best",
        **trainer_kwargs,
    )


class PoisonAfter(TrainerCallback):
    """Make every later batch NaN once `step` optimizer steps are done."""

    def __init__(self, dataset: ToyClips, step: int) -> None:
        self.dataset, self.step = dataset, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.dataset.poisoned = True
        return control


def test_non_finite_loss_stops_and_keeps_the_last_good_state(tmp_path):
    train = ToyClips(16)
    trainer = make_trainer(
        tmp_path, train, max_steps=10, save_steps=100, eval_steps=100, callbacks=[PoisonAfter(train, 4)]
    )
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at optimizer step 5.*checkpoint-4"):
        trainer.train()
    checkpoint = last_complete_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.name == "checkpoint-4"
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 4


def test_best_model_and_ema_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, ToyClips(16), ema_decay=0.5, layer_decay=0.75)
    trainer.train()
    for step in (3, 6):
        assert is_complete(tmp_path / f"checkpoint-{step}")
        assert (tmp_path / f"checkpoint-{step}" / EMA_WEIGHTS_NAME).is_file()
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    # best/ holds the first evaluation with the highest balanced accuracy (a tie does not replace it)
    evals = [(h["step"], h["eval_balanced_accuracy"]) for h in trainer.state.log_history if "eval_loss" in h]
    assert [step for step, _ in evals] == [3, 6]
    best_step, best_value = max(evals, key=lambda e: (e[1], -e[0]))
    assert metrics["global_step"] == best_step
    assert metrics["eval_balanced_accuracy"] == best_value == trainer.state.best_metric
    # Evaluation measures the EMA weights, not the live ones.
    eval_set = ToyClips(8, seed=1)
    with torch.no_grad():
        ema_out = trainer.ema.module(pixel_values=eval_set.x, labels=eval_set.labels)
        ema_loss = ema_out.loss.item()
        live_loss = trainer.model.eval()(pixel_values=eval_set.x, labels=eval_set.labels).loss.item()
    final = trainer.evaluate()
    assert final["eval_loss"] == pytest.approx(ema_loss, rel=1e-5)
    # the reported balanced accuracy is the one of the EMA model's own predictions
    predicted = ema_out.logits.argmax(-1)
    recalls = [float((predicted[eval_set.labels == c] == c).float().mean()) for c in (0, 1)]
    assert final["eval_balanced_accuracy"] == pytest.approx(sum(recalls) / 2)
    assert abs(ema_loss - live_loss) > 1e-4
    scales = sorted({round(g["lr_scale"], 6) for g in trainer.optimizer.param_groups})
    assert scales == pytest.approx([0.75**3, 0.75**2, 0.75, 1.0])  # embeddings, 2 layers, head


def test_bf16_mixed_precision_plumbing_on_cpu(tmp_path):
    trainer = make_trainer(
        tmp_path, ToyClips(16), bf16=True, max_steps=2, eval_strategy="no", save_strategy="no"
    )
    output = trainer.train()
    assert torch.isfinite(torch.tensor(output.training_loss))
    assert trainer.accelerator.mixed_precision == "bf16"


def moved_parameters(model: torch.nn.Module, initial: dict[str, torch.Tensor], atol: float) -> set[str]:
    """Names of the trainable parameters that differ from `initial` by more than `atol` somewhere."""
    return {
        name
        for name, p in model.named_parameters()
        if p.requires_grad and not torch.allclose(p.detach().cpu(), initial[name], atol=atol)
    }


def test_gradient_accumulation_matches_the_larger_batch(tmp_path):
    initial = tiny_detector(3).state_dict()
    common = {"max_steps": 2, "eval_strategy": "no", "save_strategy": "no", "learning_rate": 1e-2}
    one = make_trainer(
        tmp_path / "a", ToyClips(16), model=tiny_detector(3), per_device_train_batch_size=8, **common
    )
    one.train()
    two = make_trainer(
        tmp_path / "b",
        ToyClips(16),
        model=tiny_detector(3),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        **common,
    )
    two.train()
    # equal runs only mean something if training changed the weights: two no-op runs would agree too
    moved = moved_parameters(one.model, initial, atol=1e-3)
    assert {"classifier.weight", "classifier.bias"} <= moved
    assert len(moved) > len(list(one.model.parameters())) // 2, sorted(moved)
    for (name, a), b in zip(one.model.state_dict().items(), two.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_activation_checkpointing_gives_the_same_training(tmp_path):
    initial = tiny_detector(5).state_dict()
    common = {"max_steps": 2, "eval_strategy": "no", "save_strategy": "no"}
    plain = make_trainer(tmp_path / "a", ToyClips(8), model=tiny_detector(5), **common)
    plain.train()
    checkpointed = make_trainer(
        tmp_path / "b", ToyClips(8), model=tiny_detector(5), activation_checkpointing=True, **common
    )
    checkpointed.train()
    assert checkpointed.model.is_activation_checkpointing
    # the encoder layers, the part checkpointing recomputes, must have been trained
    moved = moved_parameters(plain.model, initial, atol=1e-4)
    assert any(name.startswith("videomae.encoder.layer.0.") for name in moved), sorted(moved)
    assert any(name.startswith("videomae.encoder.layer.1.") for name in moved), sorted(moved)
    for (name, a), b in zip(plain.model.state_dict().items(), checkpointed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
