"""The predict loop: every clip once, in dataset order, the model's own outputs; arrays straight to .npy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import Subset

from medicane_hf.inference.inputs import dataset_input
from medicane_hf.inference.loading import load_model
from medicane_hf.inference.predict import _Rows, predict
from medicane_hf.processing_medicane import DataContract
from medicane_hf.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("stage", ["detection", "tracking"])
def test_the_loop_gives_the_bare_forward_of_every_clip_in_order(stage, models, dataset_dir, tmp_path) -> None:
    task = TASKS[stage]
    model = load_model(task, str(models[stage]))
    source = dataset_input(
        task, dataset_dir, "test", DataContract.from_config(model.config).normalization, max_clips=11
    )
    result = predict(
        model,
        source.dataset,
        task.predictions_fn,
        Accelerator(cpu=True),
        batch_size=4,  # 11 clips: a last batch of 3
        num_workers=1,
        save=("logits", "embeddings"),
        array_dir=tmp_path,
        progress=False,
    )
    batch = torch.stack([source.dataset[i]["pixel_values"] for i in range(len(source.dataset))])
    with torch.inference_mode():
        outputs = model(pixel_values=batch)
    np.testing.assert_allclose(result.predictions, task.predictions_fn(outputs).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), outputs.logits.numpy(), rtol=1e-5, atol=1e-5)
    embeddings = np.load(tmp_path / "embeddings.npy")
    assert embeddings.dtype == np.float32 and embeddings.shape == tuple(outputs.embeddings.shape)
    np.testing.assert_allclose(embeddings, outputs.embeddings.numpy(), rtol=1e-4, atol=1e-5)
    labels = np.stack([np.asarray(source.dataset[i]["labels"]) for i in range(len(source.dataset))])
    np.testing.assert_array_equal(result.labels, labels)
    assert result.arrays == {"logits": tmp_path / "logits.npy", "embeddings": tmp_path / "embeddings.npy"}
    assert result.num_processes == 1 and result.clips_per_second > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings.npy", "logits.npy"]  # no shards


def test_bf16_autocast_stays_close(models, dataset_dir) -> None:
    task = TASKS["detection"]
    model = load_model(task, str(models["detection"]))
    source = dataset_input(
        task, dataset_dir, "test", DataContract.from_config(model.config).normalization, max_clips=4
    )
    full = predict(
        model, source.dataset, task.predictions_fn, Accelerator(cpu=True), num_workers=0, progress=False
    )
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    half = predict(
        model,
        source.dataset,
        task.predictions_fn,
        Accelerator(cpu=True, mixed_precision="bf16"),
        num_workers=0,
        progress=False,
    )
    assert half.predictions.dtype == np.float64
    np.testing.assert_allclose(half.predictions, full.predictions, atol=0.1)


def test_a_row_gathered_twice_or_never_is_an_error() -> None:
    rows = _Rows(4, None, ())
    rows.add({"row": np.array([0, 1]), "predictions": np.zeros((2, 2))})
    rows.add({"row": np.array([1, 2]), "predictions": np.zeros((2, 2))})
    with pytest.raises(
        RuntimeError, match=r"1 row\(s\) gathered more than once \(e.g. \[1\]\), 1 never \(e.g. \[3\]\)"
    ):
        rows.check()


def test_a_subset_keeps_its_own_order(models, dataset_dir) -> None:
    task = TASKS["tracking"]
    model = load_model(task, str(models["tracking"]))
    source = dataset_input(task, dataset_dir, "test", DataContract.from_config(model.config).normalization)
    reversed_rows = Subset(source.dataset, list(range(len(source.dataset)))[::-1][:5])
    result = predict(
        model, reversed_rows, task.predictions_fn, Accelerator(cpu=True), num_workers=0, progress=False
    )
    np.testing.assert_array_equal(result.labels, np.stack([reversed_rows[i]["labels"] for i in range(5)]))
