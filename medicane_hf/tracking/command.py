"""``medicane-hf predict-track``: a folder of frames -> detections, storm centres, linked tracks, scores and maps.

The order: arguments and settings; the output folder (results there are refused unless ``--overwrite``); the two
models (a tracker given as ``--detector`` or the reverse is named as such); the tracks file when given (parsed
before any prediction); the frames checked against both models' data contracts, packed once (``build-dataset
--no-tracks`` into ``OUT/frames_dataset``, reused when unchanged) and read by each model with its own
statistics; then hour by hour (a progress bar per hour of frames) the detector on every tile and the tracker on
the tiles above the threshold (`medicane_hf.tracking.detect`); the storms merged across tiles and linked into
tracks (`merge`, `linking`); the scores (`scoring`); the files (`tables`, `figures`), staged and published at
the end so that a failed run leaves an earlier run's files as they were.

With no arguments at all: the embedded default's held-out (test-split) days, the models the no-argument
training runs leave in ``outputs/detection-tiny-default/best`` and ``outputs/tracking-tiny-default/best``,
scored against the basin's tracks, into ``outputs/predict-track-default/`` (replaced on each such run).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from accelerate import Accelerator
from tqdm.auto import tqdm

from medicane_hf.data.frames import DEFAULT_FRAME_PATTERN
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import UNLABELLED_SPLIT
from medicane_hf.data.tracks import TrackFileError, read_tracks
from medicane_hf.inference.command import INPUT_ERRORS
from medicane_hf.inference.inputs import (
    build_frames_dataset,
    check_frames,
    check_input,
    dataset_input,
)
from medicane_hf.inference.loading import ModelFolderError, load_model, read_model_config
from medicane_hf.inference.outputs import RunFolder, check_output_dir
from medicane_hf.processing_medicane import DataContract
from medicane_hf.tasks import get_task
from medicane_hf.tracking.detect import HourlyDetector, threshold_rule
from medicane_hf.tracking.figures import GIF_FILE, MAP_FILE, MP4_FILE, draw_animation, draw_map
from medicane_hf.tracking.linking import assign_tracks
from medicane_hf.tracking.scoring import score_tracks
from medicane_hf.tracking.settings import TrackingSettings
from medicane_hf.tracking.tables import (
    DETECTION_COLUMNS,
    DETECTIONS_FILE,
    HOURS_FILE,
    SUMMARY_FILE,
    TRACKS_FILE,
    track_points,
    write_detections,
    write_hours,
    write_summary,
    write_track_file,
)

__all__ = ["PROG", "RESULT_FILES", "build_parser", "main", "parse_arguments", "run"]

PROG = "medicane-hf predict-track"
FRAMES_DATASET = "frames_dataset"
RESULT_FILES = (DETECTIONS_FILE, HOURS_FILE, TRACKS_FILE, SUMMARY_FILE, MAP_FILE, GIF_FILE, MP4_FILE)
"""Every file a run writes in ``--out`` (what counts as results already there)."""
DEFAULT_OUT = Path("outputs") / "predict-track-default"
_FLAGS = {"detection": "--detector", "tracking": "--tracker"}

logger = logging.getLogger("medicane_hf.tracking")


class NoDefaultModelError(FileNotFoundError):
    """A no-argument run found no model from the no-argument training runs."""


@dataclass
class PredictTrackArguments:
    """The parsed command line, with the no-argument default filled in."""

    detector: str
    tracker: str
    frames: Path
    out: Path
    tracks: Path | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    settings: TrackingSettings = field(default_factory=TrackingSettings)
    batch_size: int = 16
    pattern: str = DEFAULT_FRAME_PATTERN
    max_missing_frames: int = 0
    overwrite: bool = False
    follow: bool = False
    poll_seconds: float = 10.0
    idle_exit_seconds: float | None = None
    animation: bool = True
    progress: bool = True
    no_arguments: bool = False


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``medicane-hf predict-track`` (what its ``--help`` prints)."""
    defaults = TrackingSettings()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Find the Medicanes in a folder of satellite frames and track them: the detector on every tile of "
            "every hour, the tracker on the tiles above the threshold, one centre per storm, tracks linked "
            "hour to hour; detections.csv, tracks.csv (build-dataset reads it), hours.csv, summary.json, "
            "map.png and animation.gif; scores with --tracks."
        ),
        epilog=(
            "With no arguments at all: the embedded default's held-out days, the models that "
            "`python scripts/train_classification.py` and `python scripts/train_tracking.py` with no "
            f"arguments leave, scored against the basin's tracks, into {DEFAULT_OUT}/."
        ),
    )
    parser.add_argument("--detector", help="a save_pretrained folder of a MedicaneVideoMAEForDetection")
    parser.add_argument("--tracker", help="a save_pretrained folder of a MedicaneVideoMAEForTracking")
    parser.add_argument(
        "--frames", type=Path, help="the folder of frames (e.g. airmass_rgb_%%Y%%m%%d_%%H%%M.png)"
    )
    parser.add_argument("--out", type=Path, help="the output folder")
    parser.add_argument(
        "--tracks", type=Path, help="a tracks file (any layout read_tracks knows) to score against"
    )
    parser.add_argument("--start", type=pd.Timestamp, help="first hour (clip end time, UTC)")
    parser.add_argument("--end", type=pd.Timestamp, help="last hour (clip end time, UTC)")
    parser.add_argument(
        "--threshold", type=float,
        help="Medicane probability from which a tile is a detection (default: the detector's calibrated one)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default 16)")
    rules = parser.add_argument_group("merging, linking and scoring")
    for name, unit, text in (
        ("merge_radius_km", float, "detections of one hour closer than this are one storm"),
        ("max_speed_kmh", float, "the fastest a storm may move between hours"),
        ("position_error_km", float, "added to the speed gate for the centres' own error"),
        ("max_gap_hours", int, "missing hours a track may bridge"),
        ("min_duration_hours", float, "shorter tracks are dropped"),
        ("match_radius_km", float, "scoring: a prediction matches a true position within this"),
    ):
        rules.add_argument(
            f"--{name.replace('_', '-')}", type=unit, default=getattr(defaults, name),
            help=f"{text} (default {getattr(defaults, name):g})",
        )  # fmt: skip
    more = parser.add_argument_group("input and output")
    more.add_argument(
        "--pattern", default=DEFAULT_FRAME_PATTERN, help="strftime pattern of the frame file names"
    )
    more.add_argument(
        "--max-missing-frames", type=int, default=0,
        help="fill up to N missing frames of a clip with the nearest one (default 0: the hour is skipped)",
    )  # fmt: skip
    more.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --out")
    live = parser.add_argument_group("follow mode (near-real-time)")
    live.add_argument(
        "--follow", action="store_true",
        help="keep watching --frames: process each hour once its frames are there, update the files atomically; "
        "restarted with the same command it resumes (ends at --end, after --idle-exit-seconds, or when killed)",
    )  # fmt: skip
    live.add_argument(
        "--poll-seconds", type=float, default=10.0, help="with --follow: look for new frames this often"
    )
    live.add_argument(
        "--idle-exit-seconds", type=float,
        help="with --follow: stop (and draw the map and animation) when no new hour came for this long",
    )  # fmt: skip
    more.add_argument("--no-animation", action="store_true", help="no animation.gif / .mp4")
    more.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _default_arguments() -> PredictTrackArguments:
    """The no-argument run (see the module docstring)."""
    best = {stage: get_task(stage).default_output_dir() / "best" for stage in _FLAGS}
    missing = [stage for stage, folder in best.items() if not (folder / "config.json").is_file()]
    if missing:
        commands = " and ".join(f"`python scripts/{get_task(stage).script}`" for stage in missing)
        raise NoDefaultModelError(
            f"no model in {' or '.join(str(best[s]) for s in missing)}: with no arguments, predict-track uses the "
            f"models the no-argument training runs leave there; run {commands} first (make demo runs every "
            "stage), or pass --detector, --tracker, --frames and --out"
        )
    from medicane_hf.data.index import load_index
    from medicane_hf.data.synthetic.default import ensure_default_dataset

    dataset = Path(ensure_default_dataset())
    held_out = pd.to_datetime(pd.Series(load_index(dataset)["test"]["end_time"]))
    return PredictTrackArguments(
        detector=str(best["detection"]),
        tracker=str(best["tracking"]),
        frames=dataset / "source" / "frames",
        out=DEFAULT_OUT,
        tracks=dataset / "source" / "tracks.csv",
        start=held_out.min(),
        end=held_out.max(),
        overwrite=True,
        no_arguments=True,
    )


def parse_arguments(argv: list[str]) -> PredictTrackArguments:
    """`argv` -> arguments; none -> the embedded default.

    Raises:
        SystemExit: argparse's exit on a bad command line (its message names the flag).
        NoDefaultModelError: no arguments and no model from the no-argument training runs.
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not argv:
        return _default_arguments()
    missing = [f"--{k}" for k in ("detector", "tracker", "frames", "out") if not getattr(ns, k)]
    if missing:
        parser.error(f"give {', '.join(missing)} (no arguments at all: the embedded default)")
    if ns.batch_size < 1 or ns.max_missing_frames < 0:
        parser.error("--batch-size must be >= 1 and --max-missing-frames >= 0")
    if not ns.follow and (ns.idle_exit_seconds is not None or ns.poll_seconds != 10.0):
        parser.error("--poll-seconds and --idle-exit-seconds apply to --follow")
    if ns.follow and ns.overwrite:
        parser.error("--follow resumes what is in --out; --overwrite would throw it away (use another --out)")
    try:
        settings = TrackingSettings(
            threshold=ns.threshold,
            **{k: getattr(ns, k) for k in ("merge_radius_km", "max_speed_kmh", "position_error_km",
                                           "max_gap_hours", "min_duration_hours", "match_radius_km")},
        )  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    return PredictTrackArguments(
        detector=ns.detector,
        tracker=ns.tracker,
        frames=ns.frames,
        out=ns.out,
        tracks=ns.tracks,
        start=ns.start,
        end=ns.end,
        settings=settings,
        batch_size=ns.batch_size,
        pattern=ns.pattern,
        max_missing_frames=ns.max_missing_frames,
        overwrite=ns.overwrite,
        follow=ns.follow,
        poll_seconds=ns.poll_seconds,
        idle_exit_seconds=ns.idle_exit_seconds,
        animation=not ns.no_animation,
        progress=not ns.no_progress,
    )


# ---------------------------------------------------------------------------------------------- steps


def load_stage_model(stage: str, name: str) -> Any:
    """The stage's model; a folder of the other stage's model is named as the swapped flag it is.

    Raises:
        ModelFolderError: one line starting with the flag.
    """
    flag = _FLAGS[stage]
    try:
        return load_model(get_task(stage), name)
    except ModelFolderError as error:
        other = next(s for s in _FLAGS if s != stage)
        try:
            read_model_config(get_task(other), name)
        except ModelFolderError:
            raise ModelFolderError(f"{flag} {error}") from None
        raise ModelFolderError(
            f"{flag} {name} holds a {get_task(other).model_class_name}, the {other} stage's model; {flag} takes "
            f"a {get_task(stage).model_class_name}: did you swap --detector and --tracker?"
        ) from None


def read_truth(path: Path | None) -> pd.DataFrame | None:
    """The tracks to score against (before any prediction, so that a bad file costs nothing).

    Raises:
        TrackFileError: the file does not parse (its message names the file and line).
        FileNotFoundError: no such file.
    """
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"--tracks {path}: no such file")
    return read_tracks(path)


@dataclass
class Models:
    """The detector and tracker, their data contracts, and what the frames must be (checked against both)."""

    detector: Any
    tracker: Any
    contracts: dict[str, DataContract]
    expected: DataContract  # the frames' contract (grid, tiles, clip shape) both models accept
    grid_source: str


def load_models(args: PredictTrackArguments) -> Models:
    """Both models, and the frames' grid and tiles checked against both contracts before anything is packed."""
    models = {stage: load_stage_model(stage, name) for stage, name in (("detection", args.detector),
                                                                       ("tracking", args.tracker))}  # fmt: skip
    contracts = {stage: DataContract.from_config(model.config) for stage, model in models.items()}
    names = {"detection": args.detector, "tracking": args.tracker}
    checked = {
        stage: check_frames(
            args.frames, contracts[stage], get_task(stage).inference.contract_fields, names[stage]
        )
        for stage in models
    }
    expected, grid_source = checked["detection"]
    return Models(models["detection"], models["tracking"], contracts, expected, grid_source)


def hourly_detector(
    args: PredictTrackArguments,
    models: Models,
    accelerator: Accelerator,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[HourlyDetector, Path]:
    """The frames of the hours `start`..`end` packed (``OUT/frames_dataset``, reused when unchanged) and read by
    each model with its own statistics; returns (detector, store folder)."""
    store_dir = args.out / FRAMES_DATASET
    build_frames_dataset(
        args.frames, store_dir, models.expected, start=start, end=end, pattern=args.pattern,
        max_missing_frames=args.max_missing_frames, progress=args.progress,
    )  # fmt: skip
    period = "" if start is None and end is None else f" from {start} to {end}"
    inputs = {}
    for stage, name in (("detection", args.detector), ("tracking", args.tracker)):
        task = get_task(stage)
        source = dataset_input(
            task, store_dir, UNLABELLED_SPLIT, models.contracts[stage].normalization,
            description=f"the frames in {args.frames}{period}",
        )  # fmt: skip
        check_input(task, models.contracts[stage], source, name, own_statistics=False)
        inputs[stage] = source
    detector = HourlyDetector(
        models.detector, models.tracker, inputs["detection"], inputs["tracking"], accelerator,
        threshold=args.settings.threshold, batch_size=args.batch_size,
    )  # fmt: skip
    return detector, store_dir


def detect_hours(
    detector: HourlyDetector, hours: pd.DatetimeIndex, progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every hour through the detector and tracker, a progress bar per hour; (detections, hour table)."""
    tiles_per_hour = max(1, len(detector.clips) // max(len(hours), 1))
    per_call = max(1, -(-detector.batch_size // tiles_per_hour))  # hours that fill about one batch
    parts, hour_parts = [], []
    with tqdm(total=len(hours), unit="hour", desc="predict-track", disable=not progress) as bar:
        for k in range(0, len(hours), per_call):
            chunk = hours[k : k + per_call]
            found, looked = detector.detect(chunk)
            parts.append(found)
            hour_parts.append(looked)
            bar.update(len(chunk))
    return pd.concat(parts, ignore_index=True), pd.concat(hour_parts, ignore_index=True)


def finish_tables(
    detections: pd.DataFrame, hour_table: pd.DataFrame, settings: TrackingSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Merged and linked detections (`DETECTION_COLUMNS`), the hour table with its storm count, the track points."""
    linked = assign_tracks(detections, settings)
    linked = linked.sort_values(["time", "tile_row", "tile_col"], kind="stable").reset_index(drop=True)
    storms = linked[linked["kept"]].groupby("time").size()
    hour_table = hour_table.assign(storms=hour_table["time"].map(storms).fillna(0).astype(np.int64))
    return linked[list(DETECTION_COLUMNS)], hour_table, track_points(linked)


def track_summaries(points: pd.DataFrame) -> list[dict[str, Any]]:
    """Per predicted track: id, start, end, hours spanned, points, highest and mean probability, mean spread km."""
    rows = []
    for track_id, group in points.groupby("storm_id", sort=True):
        rows.append(
            {
                "track_id": track_id,
                "start": group["time"].min(),
                "end": group["time"].max(),
                "hours": (group["time"].max() - group["time"].min()) / pd.Timedelta(hours=1),
                "points": int(len(group)),
                "max_probability": float(group["probability"].max()),
                "mean_probability": float(group["probability"].mean()),
                "mean_spread_km": float(group["spread_km"].mean())
                if group["spread_km"].notna().any()
                else None,
            }
        )
    return rows


def closing_lines(summary: dict[str, Any], out: Path, published: list[str]) -> str:
    hours = summary["hours"]
    lines = [
        f"\npredict-track: {hours['processed']} hours from {hours['first']} to {hours['last']}, "
        f"{summary['detections']} tile detections, {summary['storm_centres']} storm centres, "
        f"{len(summary['tracks'])} tracks"
    ]
    scores = summary.get("scores")
    if scores is not None:
        error = scores["centre_error_km"]
        lines.append(
            f"  against {summary['truth']}: POD {scores['pod']:.3f}, FAR {scores['far']:.3f} (within "
            f"{scores['match_radius_km']:g} km), centre error mean {error['mean']:.1f} km, median "
            f"{error['median']:.1f} km, P90 {error['p90']:.1f} km; {scores['storms_found']} of "
            f"{len(scores['storms'])} true storms found, {scores['false_tracks']} false tracks"
        )
        for storm in scores["storms"]:
            first = storm["first_found"] or "never"
            lines.append(
                f"    {storm['name'] or storm['storm_id']}: {storm['hours_found']}/{storm['hours_true']} hours "
                f"found, first {first} (true from {storm['first_true']})"
            )
    else:
        lines.append("  no --tracks: no scores")
    lines.append(f"  files in {out.resolve()}: {', '.join(published)}")
    for name in (MAP_FILE, GIF_FILE, MP4_FILE):
        if name in published:
            lines.append(f"  {name.split('.')[0]}: {(out / name).resolve()}")
    return "\n".join(lines)


def run(argv: list[str]) -> dict[str, Any]:
    """Predict and track as `argv` says; returns the summary (``summary.json``'s content).

    Raises:
        the errors `main` turns into one line.
    """
    started = time.perf_counter()
    args = parse_arguments(argv)
    if args.no_arguments:
        logger.warning("No arguments: the embedded default's held-out days with %s and %s into %s",
                       args.detector, args.tracker, args.out)  # fmt: skip
    if not args.follow:  # follow mode resumes what is there
        check_output_dir(args.out, args.overwrite, names=RESULT_FILES, flag="--out")
    truth = read_truth(args.tracks)
    accelerator = Accelerator()
    models = load_models(args)
    if args.follow:
        from medicane_hf.tracking.follow import follow

        return follow(args, models, accelerator, truth)
    detector, store_dir = hourly_detector(args, models, accelerator, args.start, args.end)
    hours = detector.hours
    raw, hour_table = detect_hours(detector, hours, args.progress)
    folder = RunFolder(args.out, names=RESULT_FILES)
    try:
        summary = write_results(
            args, models, folder.staging, raw, hour_table, truth, detector.grid, store_dir,
            timing={"seconds": time.perf_counter() - started, "model_forward_seconds": detector.forward_seconds},
        )  # fmt: skip
        published = folder.publish()
    except BaseException:
        folder.discard()
        raise
    print(closing_lines(summary, args.out, published), flush=True)
    return summary


def write_results(
    args: PredictTrackArguments,
    models: Models,
    folder: Path,
    raw: pd.DataFrame,
    hour_table: pd.DataFrame,
    truth: pd.DataFrame | None,
    grid: SeviriGrid,
    store_dir: Path | None,
    *,
    timing: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Merge, link and score `raw` detections of the hours in `hour_table`; write every file into `folder`
    (each atomically; the map and animation only when `store_dir` is given); returns the summary."""
    detections, hour_table, points = finish_tables(raw, hour_table, args.settings)
    hours = pd.DatetimeIndex(hour_table["time"])
    summary = build_summary(args, models, hours, detections, points, truth, grid)
    write_detections(detections, folder / DETECTIONS_FILE)
    write_hours(hour_table, folder / HOURS_FILE)
    write_track_file(points, folder / TRACKS_FILE)
    if store_dir is not None:
        in_period = None
        if truth is not None:
            times = truth["time"]
            in_period = truth[(times >= hours[0]) & (times <= hours[-1])]
        draw_map(points, in_period, grid, folder / MAP_FILE)
        if args.animation:
            draw_animation(store_dir / "store", hours, detections, folder)
    if timing is not None:
        summary["timing"] = {**timing, "seconds_per_hour": timing["seconds"] / max(len(hours), 1)}
    write_summary(summary, folder / SUMMARY_FILE)
    return summary


def build_summary(
    args: PredictTrackArguments,
    models: Models,
    hours: pd.DatetimeIndex,
    detections: pd.DataFrame,
    points: pd.DataFrame,
    truth: pd.DataFrame | None,
    grid: SeviriGrid,
) -> dict[str, Any]:
    """``summary.json``: inputs, settings, what was found, the tracks and (with truth) the scores."""
    return {
        "detector": args.detector,
        "tracker": args.tracker,
        "frames": str(args.frames),
        "grid": models.grid_source,
        "period": {"start": args.start, "end": args.end},
        "settings": args.settings.to_dict(),
        "threshold_rule": threshold_rule(args.settings.threshold, models.detector.config),
        "merge_rule": "complete linkage of haversine distances cut at merge_radius_km; the most confident wins",
        "hours": {
            "processed": len(hours),
            "first": hours[0] if len(hours) else None,
            "last": hours[-1] if len(hours) else None,
        },
        "detections": int(len(detections)),
        "storm_centres": int(detections["kept"].sum()),
        "tracks": track_summaries(points),
        "truth": None if args.tracks is None else str(args.tracks),
        "scores": None
        if truth is None
        else score_tracks(points, truth, hours, grid, args.settings.match_radius_km),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: 0 done; 2 for input that cannot be used (one line on stderr saying why)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    try:
        run(argv)
    except (*INPUT_ERRORS, TrackFileError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0
