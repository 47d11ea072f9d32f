"""``scripts/infer_classification.py`` and ``scripts/infer_tracking.py``: batch inference of a stage, ``main(stage)``.

The order: arguments; the output folder (refused when it holds results, unless ``--overwrite``); the model (a
clear line for a folder that is not the stage's model); the input (a build-dataset split, or frames packed into a
store on the main process); the model's data contract against the input (every difference listed); the predict
loop on every process; on the main process the table, arrays, metrics, figures and log, moved into the output
folder at the end. ``accelerate launch`` runs it once per process; plain ``python`` runs one process.

With no arguments at all it runs the embedded default: the default dataset's test split and the model the
no-argument training run leaves in ``outputs/<stage>-tiny-default/best``, into
``outputs/<stage>-tiny-default/inference/`` (replacing an earlier no-argument run's results); without that
model it says which training command to run first.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from medicane_hf.data.frames import DEFAULT_FRAME_PATTERN, FrameSizeError, FrameStoreError
from medicane_hf.data.index import UNLABELLED_SPLIT
from medicane_hf.inference.inputs import (
    InferenceInput,
    InputError,
    build_frames_dataset,
    check_frames,
    check_input,
    dataset_input,
)
from medicane_hf.inference.loading import ModelFolderError, load_model
from medicane_hf.inference.metrics import (
    compute_metrics,
    draw_figures,
    metric_context,
    metrics_document,
    summary_line,
)
from medicane_hf.inference.outputs import (
    LOG_FILE,
    METRICS_FILE,
    JsonlLog,
    ResultsExistError,
    RunFolder,
    check_output_dir,
    write_json,
    write_table,
)
from medicane_hf.inference.predict import ARRAY_OUTPUTS, Predictions, predict
from medicane_hf.processing_medicane import ContractMismatchError, DataContract
from medicane_hf.tasks import PredictionInputs, TaskSpec, get_task

__all__ = ["FRAMES_DATASET", "InferenceArguments", "build_parser", "main", "parse_arguments", "run"]

logger = logging.getLogger("medicane_hf.inference")

FRAMES_DATASET = "frames_dataset"
"""Where ``--frames`` are packed by default, inside ``--output_dir`` (reused by the next run on the same frames)."""


class NoDefaultModelError(FileNotFoundError):
    """A no-argument run found no model from the no-argument training run."""


INPUT_ERRORS: tuple[type[Exception], ...] = (
    ContractMismatchError,
    FileNotFoundError,
    FrameSizeError,
    FrameStoreError,
    InputError,
    ModelFolderError,
    NotADirectoryError,
    ResultsExistError,
)
"""What a user's input or model path can be wrong with: one line and exit code 2 (also predict-track's)."""


class _FollowerError(RuntimeError):
    """Another process than the main one stops because the main one failed (which printed why)."""


@dataclass
class InferenceArguments:
    """The parsed command line (see `build_parser`), with the defaults of a no-argument run filled in."""

    model_name_or_path: str
    output_dir: Path
    dataset_dir: Path | None = None
    split: str | None = None
    frames: Path | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    pattern: str = DEFAULT_FRAME_PATTERN
    max_missing_frames: int = 0
    store_dir: Path | None = None
    overwrite: bool = False
    save_logits: bool = False
    save_embeddings: bool = False
    batch_size: int = 16
    num_workers: int = 2
    mixed_precision: str | None = None
    max_clips: int | None = None
    progress: bool = True
    no_arguments: bool = False

    @property
    def saved_arrays(self) -> tuple[str, ...]:
        """The `ARRAY_OUTPUTS` asked for."""
        return tuple(name for name in ARRAY_OUTPUTS if getattr(self, f"save_{name}"))


def default_output_dir(task: TaskSpec) -> Path:
    """Where the no-argument run writes: ``outputs/<stage>-tiny-default/inference``."""
    return task.default_output_dir() / "inference"


def build_parser(task: TaskSpec) -> argparse.ArgumentParser:
    """The flags of the stage's inference script (what its ``--help`` prints)."""
    if task.inference is None:
        raise ValueError(f"the {task.name} stage has no batch inference")
    script = task.inference.script
    parser = argparse.ArgumentParser(
        prog=f"scripts/{script}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            f"Batch inference of the {task.name} stage ({task.description}) on a build-dataset split or a folder "
            "of frames: one row per clip in predictions.parquet / .csv, metrics.json and figures when the input "
            "has labels, optional logits and embeddings; on any number of processes (accelerate launch)."
        ),
        epilog=textwrap.dedent(
            f"""\
            With no arguments at all: the embedded default's test split, the model in
            {task.default_output_dir() / "best"} (what `python scripts/{task.script}` with no arguments
            trains), results in {default_output_dir(task)} (replaced on each such run).
            With arguments: --model_name_or_path, one of --dataset_dir / --frames, and --output_dir."""
        ),
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        help=f"a save_pretrained folder of a {task.model_class_name} (e.g. outputs/{task.name}-small/best) or a Hub id",
    )
    source = parser.add_argument_group("input (one of --dataset_dir / --frames)")
    choice = source.add_mutually_exclusive_group()
    choice.add_argument("--dataset_dir", type=Path, help="a build-dataset folder (labelled: metrics too)")
    choice.add_argument(
        "--frames",
        type=Path,
        help="a folder of frames and no tracks file: every tile of every hourly clip is predicted",
    )
    source.add_argument(
        "--split",
        help="with --dataset_dir: train, validation, test or unlabelled (default: test; unlabelled for a folder "
        "built with --no-tracks)",
    )
    source.add_argument("--start", type=pd.Timestamp, help="with --frames: first clip end time, UTC")
    source.add_argument("--end", type=pd.Timestamp, help="with --frames: last clip end time, UTC")
    source.add_argument(
        "--pattern", default=DEFAULT_FRAME_PATTERN, help="with --frames: strftime pattern of the file names"
    )
    source.add_argument(
        "--max_missing_frames",
        type=int,
        default=0,
        help="with --frames: fill up to N missing frames of a clip with the nearest one (default 0: skip it)",
    )
    source.add_argument(
        "--store_dir",
        type=Path,
        help=f"with --frames: where they are packed (default OUTPUT_DIR/{FRAMES_DATASET}; reused when unchanged)",
    )
    source.add_argument("--max_clips", type=int, help="predict at most N clips, evenly spread (a quick look)")
    out = parser.add_argument_group("output")
    out.add_argument("--output_dir", type=Path, help="the run folder (predictions, metrics, figures, log)")
    out.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run there")
    out.add_argument(
        "--save_logits", action="store_true", help="also write logits.npy [N, D], rows = table rows"
    )
    out.add_argument(
        "--save_embeddings",
        action="store_true",
        help="also write embeddings.npy [N, hidden], rows = table rows",
    )
    out.add_argument("--no_progress", action="store_true", help="no progress bar")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--batch_size", type=int, default=16, help="clips per forward pass, per process")
    speed.add_argument(
        "--num_workers", type=int, default=2, help="DataLoader workers reading clips, per process"
    )
    precision = speed.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    precision.add_argument("--fp16", action="store_true", help="autocast to float16 (GPU)")
    return parser


def parse_arguments(task: TaskSpec, argv: list[str]) -> InferenceArguments:
    """`argv` -> arguments; no arguments -> the embedded default (see the module docstring).

    Raises:
        SystemExit: argparse's exit on a bad command line (its message names the flag).
        NoDefaultModelError: a no-argument run and no model from the no-argument training run.
    """
    parser = build_parser(task)
    ns = parser.parse_args(argv)
    if not argv:
        best = task.default_output_dir() / "best"
        if not (best / "config.json").is_file():
            raise NoDefaultModelError(
                f"no model in {best}: with no arguments, scripts/{task.inference.script} predicts with the model that "
                f"the no-argument training run leaves there; run `python scripts/{task.script}` first, or pass "
                "--model_name_or_path, --dataset_dir or --frames, and --output_dir"
            )
        from medicane_hf.data.synthetic.default import ensure_default_dataset

        return InferenceArguments(
            model_name_or_path=str(best),
            output_dir=default_output_dir(task),
            dataset_dir=Path(ensure_default_dataset()),
            split="test",
            overwrite=True,
            num_workers=0,  # the small default split reads faster in the main thread than workers start
            no_arguments=True,
        )
    missing = [
        flag
        for flag, value in (
            ("--model_name_or_path", ns.model_name_or_path),
            ("--dataset_dir or --frames", ns.dataset_dir or ns.frames),
            ("--output_dir", ns.output_dir),
        )
        if not value
    ]
    if missing:
        parser.error(
            f"with arguments, give {', '.join(missing)} too (no arguments at all: the embedded default)"
        )
    if ns.frames is not None and ns.split is not None:
        parser.error("--split applies to --dataset_dir; --frames are predicted whole (use --start / --end)")
    frame_only = [f"--{k}" for k in ("start", "end", "store_dir") if getattr(ns, k) is not None]
    if ns.dataset_dir is not None and frame_only:
        parser.error(f"{', '.join(frame_only)} apply to --frames, not --dataset_dir")
    if ns.batch_size < 1 or ns.num_workers < 0 or ns.max_missing_frames < 0:
        parser.error("--batch_size must be >= 1, --num_workers and --max_missing_frames >= 0")
    return InferenceArguments(
        model_name_or_path=ns.model_name_or_path,
        output_dir=ns.output_dir,
        dataset_dir=ns.dataset_dir,
        split=ns.split,
        frames=ns.frames,
        start=ns.start,
        end=ns.end,
        pattern=ns.pattern,
        max_missing_frames=ns.max_missing_frames,
        store_dir=ns.store_dir,
        overwrite=ns.overwrite,
        save_logits=ns.save_logits,
        save_embeddings=ns.save_embeddings,
        batch_size=ns.batch_size,
        num_workers=ns.num_workers,
        mixed_precision="bf16" if ns.bf16 else "fp16" if ns.fp16 else None,
        max_clips=ns.max_clips,
        progress=not ns.no_progress,
    )


# ---------------------------------------------------------------------------------------------- steps


def _on_main(accelerator: Accelerator, work: Callable[[], Any]) -> Any:
    """``work()`` on the main process only; the others wait for its result, or stop when it failed (so that no
    process waits for a result that will not come)."""
    if accelerator.num_processes == 1:
        return work()
    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = work()
        except Exception as caught:
            error = caught
    shared = broadcast_object_list([result, None if error is None else f"{type(error).__name__}: {error}"])
    if error is not None:
        raise error
    if shared[1] is not None:
        raise _FollowerError(shared[1])
    return shared[0]


def _input(
    task: TaskSpec, args: InferenceArguments, model: DataContract, accelerator: Accelerator
) -> InferenceInput:
    """The input, checked against the model's contract (frames: checked before they are packed, too)."""
    if args.frames is None:
        source = dataset_input(
            task, args.dataset_dir, args.split, model.normalization, max_clips=args.max_clips
        )
    else:
        expected, grid_source = check_frames(
            args.frames, model, task.inference.contract_fields, args.model_name_or_path
        )
        store_dir = args.store_dir or args.output_dir / FRAMES_DATASET
        info = _on_main(
            accelerator,
            lambda: build_frames_dataset(
                args.frames,
                store_dir,
                expected,
                start=args.start,
                end=args.end,
                pattern=args.pattern,
                max_missing_frames=args.max_missing_frames,
                progress=args.progress,
            ),
        )
        period = "" if args.start is None and args.end is None else f" from {args.start} to {args.end}"
        source = dataset_input(
            task,
            store_dir,
            UNLABELLED_SPLIT,
            model.normalization,
            max_clips=args.max_clips,
            description=f"the frames in {args.frames}{period}",
        )
        source.notes.append(f"grid: {grid_source}; store in {store_dir}: {info['store']['action']}")
    # frames packed here have statistics of their own frames: nothing the model could have used
    check_input(task, model, source, args.model_name_or_path, own_statistics=args.frames is None)
    return source


def _table(task: TaskSpec, source: InferenceInput, predictions: Predictions, context: Any) -> pd.DataFrame:
    """The prediction table: the clip columns, then the stage's (`InferenceSpec.table_fn`)."""
    stage = task.inference.table_fn(
        PredictionInputs(predictions.predictions, predictions.labels, source.clips, context)
    )
    if len(stage) != len(source.clips):
        raise RuntimeError(f"{len(stage)} prediction rows for {len(source.clips)} clips")
    return pd.concat([source.clips.reset_index(drop=True), stage.reset_index(drop=True)], axis=1)


def _closing_lines(
    task: TaskSpec,
    args: InferenceArguments,
    predictions: Predictions,
    metrics: dict | None,
    published: list[str],
) -> str:
    lines = [
        f"\n{task.name} inference: {len(predictions.predictions):,} clips in {predictions.seconds:.1f} s "
        f"({predictions.clips_per_second:.1f} clips/s, {predictions.num_processes} process(es))"
    ]
    if metrics is not None:
        lines.append(f"  {summary_line(task, metrics)}")
    else:
        lines.append("  no labels: no metrics")
    lines.append(f"  results in {args.output_dir.resolve()}: {', '.join(published)}")
    return "\n".join(lines)


def run(stage: str, argv: list[str]) -> dict[str, Any]:
    """Predict with the stage's model as `argv` says; returns ``{"metrics": ... | None, "output_dir", "num_clips"}``.

    Raises:
        the errors `main` turns into one line (see there).
    """
    task = get_task(stage)
    args = parse_arguments(task, argv)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    if args.no_arguments and accelerator.is_main_process:
        logger.warning(
            "No arguments: predicting the embedded default's test split with %s into %s",
            args.model_name_or_path,
            args.output_dir,
        )
    check_output_dir(args.output_dir, args.overwrite)
    model = load_model(task, args.model_name_or_path)
    model_contract = DataContract.from_config(model.config)
    source = _input(task, args, model_contract, accelerator)
    folder = RunFolder(args.output_dir) if accelerator.is_main_process else None
    try:
        return _predict_and_write(task, args, accelerator, model, model_contract, source, folder)
    except BaseException:
        if folder is not None:
            folder.discard()
        raise


def _predict_and_write(
    task: TaskSpec,
    args: InferenceArguments,
    accelerator: Accelerator,
    model: Any,
    model_contract: DataContract,
    source: InferenceInput,
    folder: RunFolder | None,
) -> dict[str, Any]:
    log = JsonlLog(folder.path(LOG_FILE)) if folder is not None else None
    if log is not None:
        log.write(
            "start",
            stage=task.name,
            model=args.model_name_or_path,
            model_contract=model.config.describe_data_contract(),
            calibration={
                k: getattr(model.config, k, None)
                for k in (
                    "detection_temperature",
                    "detection_threshold",
                    "tracking_spread_scale",
                    "tracking_radius_factors",
                )
            },
            input=source.description,
            dataset_dir=source.dataset_dir,
            split=source.split,
            clips=len(source.dataset),
            labelled=source.labelled,
            notes=source.notes,
            processes=accelerator.num_processes,
            device=str(accelerator.device),
            mixed_precision=accelerator.mixed_precision,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            arrays=list(args.saved_arrays),
        )
        for note in source.notes:
            logger.warning("%s", note)
    every = max(len(source.dataset) // 10, 1)
    last_logged = [0]

    def on_progress(done: int, seconds: float) -> None:
        # a record about every tenth of the clips: enough to see the rate, not a line per batch
        if log is not None and (done - last_logged[0] >= every or done == len(source.dataset)):
            last_logged[0] = done
            log.write(
                "progress", clips=done, of=len(source.dataset), clips_per_second=done / max(seconds, 1e-9)
            )

    predictions = predict(
        model,
        source.dataset,
        task.predictions_fn,
        accelerator,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        save=args.saved_arrays,
        array_dir=folder.staging if folder is not None else None,
        progress=args.progress,
        description=f"{task.name} inference",
        on_progress=on_progress,
    )
    summary: dict[str, Any] = {
        "metrics": None,
        "output_dir": args.output_dir,
        "num_clips": len(source.dataset),
    }
    if predictions is not None and folder is not None and log is not None:
        summary["metrics"] = _write_results(
            task, args, model, model_contract, source, predictions, folder, log
        )
        log.write(
            "done", seconds=predictions.seconds, clips=len(predictions.predictions),
            clips_per_second=predictions.clips_per_second,
        )  # fmt: skip
        published = folder.publish()
        print(_closing_lines(task, args, predictions, summary["metrics"], published), flush=True)
    accelerator.wait_for_everyone()
    return summary


def _write_results(
    task: TaskSpec,
    args: InferenceArguments,
    model: Any,
    model_contract: DataContract,
    source: InferenceInput,
    predictions: Predictions,
    folder: RunFolder,
    log: JsonlLog,
) -> dict[str, Any] | None:
    """Table, metrics and figures into the staging folder (the arrays are there already); returns the metrics."""
    context = metric_context(model.config, model_contract, source.contract, source.baseline_xy)
    table = _table(task, source, predictions, context)
    write_table(table, folder.staging)
    result = compute_metrics(task, predictions.predictions, predictions.labels, source.dataset, context)
    if result is None:
        log.write("metrics", skipped="the input has no labels")
        return None
    document = metrics_document(
        task,
        result,
        context,
        len(table),
        {"model": args.model_name_or_path, "input": source.description},
    )
    write_json(folder.path(METRICS_FILE), document)
    figures = draw_figures(task, table, result, folder.staging)
    log.write("metrics", metrics=result.scalars, figures=figures)
    return document


def main(stage: str, argv: list[str] | None = None) -> int:
    """Command-line entry: 0 on success, 2 for input that cannot be predicted on (one line on stderr saying
    why: the model folder, the input, the contract, results already in the output folder)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    try:
        run(stage, argv)
    except _FollowerError:
        return 2  # the main process printed the reason
    except INPUT_ERRORS as error:
        # every process meets the same input; one line from the first says it (RANK: set by accelerate launch)
        if os.environ.get("RANK", "0") == "0":
            script = get_task(stage).inference.script
            print(f"{script}: error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0
