"""`MedicaneTrainer`: ``transformers.Trainer`` with the Medicane recipe.

Everything the recipe needs fits in Trainer's hooks, so there is no hand-written
loop; what this subclass adds, and why:

- ``create_optimizer``: AdamW over parameter groups with layer-wise lr decay and
  no decay on norms, biases, mask token and position tables (Trainer's default
  groups know neither layer decay nor the mask token).
- ``compute_loss`` / ``prediction_step``: the loss is the model's own (it holds
  label smoothing, class weights and the MAE loss in its config); evaluation
  always returns the loss (Trainer drops it for inputs without ``labels``, i.e.
  MAE pre-training) and the task's predictions (e.g. pixels for tracking).
- ``training_step``: a non-finite loss stops the run with a message, after
  saving a complete checkpoint of the weights before that step (the optimizer
  has not stepped yet, so they are the last good ones).
- ``evaluate``: runs under a forked, fixed-seed RNG so that random MAE masks give
  a comparable validation loss at every evaluation and evaluation does not
  shift the training RNG stream (exact resume); with EMA on, it evaluates the
  averaged weights; a new best validation score writes ``best/``.
- ``_save_checkpoint`` / ``_load_from_checkpoint``: add the EMA weights and a
  completeness marker (Trainer writes checkpoints in place, not atomically; see
  ``medicane_hf.training.checkpoints``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalPrediction

from medicane_hf.jsonable import jsonable
from medicane_hf.tasks import StageMetrics
from medicane_hf.training.adapters import save_pretrained_folder
from medicane_hf.training.checkpoints import mark_complete, write_folder_atomically
from medicane_hf.training.optim import parameter_groups

logger = logging.getLogger(__name__)

EMA_WEIGHTS_NAME = "ema_model.safetensors"
LEGACY_EMA_WEIGHTS_NAME = (
    "ema_state.pt"  # torch.save of the EMA state_dict, written before safetensors; read only
)
EVAL_SEED_OFFSET = 1_000_003  # evaluation masks: a fixed seed, distinct from the training seed


@dataclass
class _Evaluation:
    """One `evaluate` call: the dataset it measures and what the metric function returned for it."""

    dataset: Any
    result: StageMetrics | None = None
    prediction: EvalPrediction | None = None  # what the metric function was given (gathered over processes)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def save_model_folder(
    model: nn.Module,
    folder: str | Path,
    metrics: dict[str, Any] | None = None,
    extra_files: dict | None = None,
) -> Path:
    """Write a `save_pretrained` folder (config, weights, `metrics.json`, extra text files) atomically (a LoRA
    model: `medicane_hf.training.adapters.save_pretrained_folder`)."""

    def write(tmp: Path) -> None:
        save_pretrained_folder(model, tmp)  # a LoRA model: merged, and its adapter in adapter/
        if metrics is not None:
            (tmp / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2, sort_keys=True))
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)

    return write_folder_atomically(folder, write)


class _EmaUpdateCallback(TrainerCallback):
    """Update the trainer's EMA after every optimizer step."""

    def __init__(self, trainer: MedicaneTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if self.trainer.ema is not None:
            self.trainer.ema.update(
                self.trainer.accelerator.unwrap_model(self.trainer.model), step=state.global_step
            )
        return control


class MedicaneTrainer(Trainer):
    """Trainer for the three stages; see the module docstring for what it changes.

    Args (beside Trainer's):
        layer_decay: layer-wise lr decay factor (None or 1.0: off).
        ema_decay: keep a timm ``ModelEmaV3`` of the weights with this decay (None: no EMA).
        predictions_fn: ``outputs -> tensor`` of what ``compute_metrics`` sees as predictions
            (None: loss only).
        metrics_fn: ``(EvalPrediction, dataset) -> StageMetrics`` (`medicane_hf.tasks`); the dataset is the
            one being evaluated (validation or test), in evaluation order, for per-clip context such as tile
            offsets. Its scalars are what ``evaluate`` returns; ``evaluate_with_details`` also returns its
            details (confusion matrix, per-clip errors) from the same evaluation.
        best_dir: where to write the best model (`save_pretrained` folder) when the validation metric
            `args.metric_for_best_model` improves; None: not written.
        extra_files: text files written beside every model folder (e.g. the resolved arguments).
    """

    # The loss is a per-batch mean from the model: Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        layer_decay: float | None = None,
        ema_decay: float | None = None,
        predictions_fn: Callable[[Any], torch.Tensor] | None = None,
        metrics_fn: Callable[[EvalPrediction, Any], StageMetrics] | None = None,
        best_dir: str | Path | None = None,
        extra_files: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if "compute_metrics" in kwargs:
            raise TypeError(
                "MedicaneTrainer takes metrics_fn (which sees the evaluated dataset), not compute_metrics"
            )
        # Set once: Trainer calls it with the predictions only; `_compute_metrics` finds the dataset in the
        # evaluation in progress (`_Evaluation`), so nothing is rebound per call.
        with_metrics = metrics_fn is not None and predictions_fn is not None
        super().__init__(*args, compute_metrics=self._compute_metrics if with_metrics else None, **kwargs)
        self._evaluation: _Evaluation | None = None
        # The model's loss is a mean; never hand it `num_items_in_batch`.
        self.model_accepts_loss_kwargs = False
        self.layer_decay = layer_decay
        self.predictions_fn = predictions_fn
        self.metrics_fn = metrics_fn
        self.best_dir = Path(best_dir) if best_dir is not None else None
        self.extra_files = dict(extra_files or {})
        self.best_metrics: dict[str, float] | None = None
        self.ema = None
        if ema_decay is not None:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.model, decay=ema_decay)
            self.add_callback(_EmaUpdateCallback(self))

    # ------------------------------------------------------------------ optimizer

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (Trainer's optimizer class and betas) over layer-decay / weight-decay parameter groups."""
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        groups = parameter_groups(
            opt_model, self.args.learning_rate, self.args.weight_decay, self.layer_decay
        )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("params", None)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        logger.info(
            "Optimizer %s: %d parameter groups, lr %.3g (layer decay %s), weight decay %.3g",
            optimizer_cls.__name__,
            len(groups),
            self.args.learning_rate,
            self.layer_decay,
            self.args.weight_decay,
        )
        return self.optimizer

    # ------------------------------------------------------------------ loss and prediction

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The model's own loss (its config holds label smoothing, class weights, the MAE masks)."""
        outputs = model(**inputs)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
        if loss is None:
            raise ValueError(f"{type(model).__name__} returned no loss for inputs {sorted(inputs)}")
        return (loss, outputs) if return_outputs else loss

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(loss, predictions, labels) of one evaluation batch; predictions from `predictions_fn`."""
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach().mean()
        if prediction_loss_only or self.predictions_fn is None:
            return loss, None, None
        predictions = self.predictions_fn(outputs).detach().float()
        return loss, predictions, None if labels is None else labels.detach()

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        """Trainer's step, then stop on a non-finite loss (on every process at once)."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        finite = torch.isfinite(loss.detach()).all().float().reshape(1)
        if self.args.world_size > 1:
            finite = self.accelerator.gather(finite).min()
        if finite.item() < 1:
            self._stop_on_non_finite_loss(model, loss)
        return loss

    def _stop_on_non_finite_loss(self, model: nn.Module, loss: torch.Tensor) -> None:
        # The optimizer has not stepped on this batch: the weights are the last good ones. Keep them.
        model.zero_grad(set_to_none=True)
        self._save_checkpoint(model, trial=None)
        checkpoint = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        raise NonFiniteLossError(
            f"training loss is {loss.item()} at optimizer step {self.state.global_step + 1} "
            f"(epoch {self.state.epoch or 0:.2f}); stopped. The last good state is in {checkpoint}. "
            "Usual causes: a learning rate too high for the batch size (see the logged effective lr), "
            "fp16 overflow (try --bf16), or bad input values (NaN pixels)."
        )

    # ------------------------------------------------------------------ evaluation

    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[None]:
        """Evaluate the EMA weights in place of the live ones (swapped back afterwards)."""
        if self.ema is None:
            yield
            return
        live = self.accelerator.unwrap_model(self.model)
        backup = {k: v.detach().clone() for k, v in live.state_dict().items()}
        live.load_state_dict(self.ema.module.state_dict())
        try:
            yield
        finally:
            live.load_state_dict(backup)

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Trainer's evaluation with a fixed-seed RNG, EMA weights when on, and the best model kept."""
        return self.evaluate_with_details(eval_dataset, ignore_keys, metric_key_prefix)[0]

    def evaluate_with_details(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """`evaluate`, plus the details the stage's metric function computed in the same pass ({} without)."""
        metrics, call = self._evaluate_call(eval_dataset, ignore_keys, metric_key_prefix)
        return metrics, (call.result.details if call.result is not None else {})

    def evaluate_with_prediction(
        self, eval_dataset: Any, metric_key_prefix: str
    ) -> tuple[dict[str, float], EvalPrediction | None]:
        """`evaluate`, plus the predictions and labels the metric function saw (None for a stage without metrics)."""
        metrics, call = self._evaluate_call(eval_dataset, None, metric_key_prefix)
        return metrics, call.prediction

    def _evaluate_call(
        self, eval_dataset: Any, ignore_keys: list[str] | None, metric_key_prefix: str
    ) -> tuple[dict[str, float], _Evaluation]:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        call = _Evaluation(dataset)
        self._evaluation = call
        devices = [self.args.device] if self.args.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), self.ema_weights():
                torch.manual_seed(self.args.seed + EVAL_SEED_OFFSET)
                metrics = super().evaluate(dataset, ignore_keys, metric_key_prefix)
                if metric_key_prefix == "eval" and self.is_in_train:
                    self._keep_if_best(metrics)
        finally:
            self._evaluation = None
        return metrics, call

    def _compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Trainer's `compute_metrics`: the stage's metrics of the dataset under evaluation."""
        call = self._evaluation
        if call is None:
            raise RuntimeError("MedicaneTrainer computes metrics only inside evaluate()")
        call.prediction = prediction
        call.result = self.metrics_fn(prediction, call.dataset)
        return call.result.scalars

    def _metric_value(self, metrics: dict[str, float]) -> float | None:
        name = self.args.metric_for_best_model
        if name is None:
            return None
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in metrics:
            raise KeyError(
                f"metric_for_best_model={name!r} is not among the evaluation metrics {sorted(metrics)}"
            )
        return float(metrics[key])

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        """Write `best/` when the validation metric beats the best so far (Trainer's `state.best_metric`)."""
        value = self._metric_value(metrics)
        if value is None or self.best_dir is None or not math.isfinite(value):
            return
        best = self.state.best_metric
        better = best is None or (value > best if self.args.greater_is_better else value < best)
        if not better:
            return
        self.best_metrics = {**metrics, "global_step": self.state.global_step}
        if self.args.should_save:
            save_model_folder(
                self.accelerator.unwrap_model(self.model), self.best_dir, self.best_metrics, self.extra_files
            )
            logger.info(
                "New best %s = %.5g at step %d: saved %s",
                self.args.metric_for_best_model,
                value,
                self.state.global_step,
                self.best_dir,
            )

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """Trainer's checkpoint, plus the EMA weights and the resolved arguments, then the completeness marker."""
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if self.ema is not None:
                # safetensors like every weight file this project writes (save_model drops tied duplicates)
                save_model(self.ema.module, str(folder / EMA_WEIGHTS_NAME))
            for name, text in self.extra_files.items():
                (folder / name).write_text(text)
            mark_complete(folder, self.state.global_step)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Trainer's weight loading, plus the EMA weights when the run keeps an EMA."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.ema is None:
            return
        path = Path(resume_from_checkpoint) / EMA_WEIGHTS_NAME
        legacy = Path(resume_from_checkpoint) / LEGACY_EMA_WEIGHTS_NAME
        if path.is_file():
            load_model(self.ema.module, str(path), device="cpu")
        elif legacy.is_file():
            self.ema.module.load_state_dict(torch.load(legacy, map_location="cpu", weights_only=True))
        else:
            logger.warning(
                "%s has no EMA weights: the EMA restarts from the resumed weights", resume_from_checkpoint
            )
            self.ema.set(self.accelerator.unwrap_model(self.model))
