"""Fitting translated tensors to a task: which heads, decoder and final norm stay, and why the rest goes.

Whether a source head is kept is one table, `HEAD_POLICY`: (task, what the source head is, the caller's
`head` choice) -> a rule that gives the decision and, for a dropped head, its reason. Keep and reason
cannot disagree because one rule says both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from medicane_hf.convert.keys import ENCODER_NORM, HEAD, TRACK_MLP, Translation
from medicane_hf.convert.options import TASKS, HeadPolicy, Task
from medicane_hf.convert.report import ConversionError, KeyNote

# Medicane detectors have 2 (background, medicane) or 3 (+ neighbouring) classes; other head sizes
# (400, 710 Kinetics classes) are pretraining heads that a detector does not want by default.
MEDICANE_CLASS_COUNTS = (2, 3)


@dataclass(frozen=True)
class HeadDecision:
    """Keep the source head (renamed to the task's head), or drop it with `reason` in the report."""

    keep: bool
    reason: str = ""


# (source head rows, wanted num_labels or None) -> decision; raises ConversionError for a request that
# cannot be honoured (a --keep-head of the wrong size).
HeadRule = Callable[[int, "int | None"], HeadDecision]

_KEEP = HeadDecision(keep=True)


def _keep(rows: int, num_labels: int | None) -> HeadDecision:
    return _KEEP


def _dropped_on_request(rows: int, num_labels: int | None) -> HeadDecision:
    return HeadDecision(False, "source head dropped on request (--drop-head)")


def _classifier_if_it_fits(rows: int, num_labels: int | None) -> HeadDecision:
    """Detection, auto: a classifier of the wanted size (or of a Medicane size when none is asked)."""
    if (rows == num_labels) if num_labels is not None else (rows in MEDICANE_CLASS_COUNTS):
        return _KEEP
    wanted = f"num_labels={num_labels}" if num_labels is not None else "a Medicane detector (2 or 3 classes)"
    return HeadDecision(
        False, f"{rows}-class head (e.g. Kinetics classes) does not fit {wanted}; --keep-head keeps it"
    )


def _kept_if_labels_agree(rows: int, num_labels: int | None) -> HeadDecision:
    """Detection, --keep-head: any size, unless it contradicts an explicit num_labels."""
    if num_labels is not None and num_labels != rows:
        raise ConversionError(f"--keep-head: the source head has {rows} classes but num_labels={num_labels}")
    return _KEEP


def _regressor_is_not_a_classifier(rows: int, num_labels: int | None) -> HeadDecision:
    return HeadDecision(False, "tracking regressor is not a classifier; --keep-head keeps it")


def _classifier_is_not_a_regressor(rows: int, num_labels: int | None) -> HeadDecision:
    return HeadDecision(
        False,
        f"classifier head with {rows} outputs is not a position regressor; --keep-head keeps a 2-output head",
    )


def _kept_if_two_outputs(rows: int, num_labels: int | None) -> HeadDecision:
    """Tracking, --keep-head on a classifier: only a 2-output head can serve as the (x, y) regressor."""
    if rows != 2:
        raise ConversionError(f"--keep-head: the source head has {rows} outputs, a tracking regressor has 2")
    return _KEEP


# (task, source head kind, head policy) -> rule. Every combination is listed, so none falls through.
HEAD_POLICY: dict[tuple[str, str, str], HeadRule] = {
    ("detection", "classifier", "auto"): _classifier_if_it_fits,
    ("detection", "classifier", "keep"): _kept_if_labels_agree,
    ("detection", "classifier", "drop"): _dropped_on_request,
    ("detection", "regressor", "auto"): _regressor_is_not_a_classifier,
    ("detection", "regressor", "keep"): _kept_if_labels_agree,
    ("detection", "regressor", "drop"): _dropped_on_request,
    ("tracking", "classifier", "auto"): _classifier_is_not_a_regressor,
    ("tracking", "classifier", "keep"): _kept_if_two_outputs,
    ("tracking", "classifier", "drop"): _dropped_on_request,
    ("tracking", "regressor", "auto"): _keep,
    ("tracking", "regressor", "keep"): _keep,
    ("tracking", "regressor", "drop"): _dropped_on_request,
}


def decide_head(task: str, kind: str, head: HeadPolicy, rows: int, num_labels: int | None) -> HeadDecision:
    """Look up `HEAD_POLICY` for a source head of `rows` outputs that was a `kind` (classifier/regressor)."""
    try:
        rule = HEAD_POLICY[(task, kind, head)]
    except KeyError:
        raise ConversionError(
            f"no head policy for task={task!r}, source head {kind!r}, head={head!r}"
        ) from None
    return rule(rows, num_labels)


@dataclass
class TaskFit:
    """The tensors under the target model's names, plus what was dropped and what may be new."""

    tensors: dict[str, torch.Tensor]
    sources: dict[str, str]
    dropped: list[KeyNote]
    fresh_allowed: dict[str, str]  # model key prefix -> why it may be freshly initialised
    use_mean_pooling: bool
    num_labels: int | None  # from a kept classification head
    notes: list[str]


def resolve_task(translation: Translation, task: Task) -> str:
    """``auto``: a decoder means pretraining, the old tracking head tracking, else detection."""
    if task not in TASKS:
        raise ConversionError(f"unknown task {task!r}; choose one of {TASKS}")
    if task != "auto":
        return task
    keys = translation.tensors
    if any(k.startswith(("decoder.", "encoder_to_decoder.")) for k in keys):
        return "pretraining"
    if any(k.startswith(TRACK_MLP) for k in keys):
        return "tracking"
    return "detection"  # with the source's classifier, or a fresh head when it has none


def fit_to_task(
    translation: Translation,
    task: str,
    *,
    head: HeadPolicy = "auto",
    num_labels: int | None = None,
    source_head_kind: str = "classifier",
) -> TaskFit:
    """Keep, rename or drop heads, decoder and final norm for ``task``; every source key ends up mapped or dropped.

    ``source_head_kind`` says what ``__head__`` was in the source: ``classifier`` or ``regressor``.
    """
    tensors = dict(translation.tensors)
    sources = dict(translation.sources)
    dropped: list[KeyNote] = []
    fresh: dict[str, str] = {}
    notes: list[str] = []

    def drop(prefix: str, reason: str) -> None:
        for key in [k for k in tensors if k.startswith(prefix)]:
            tensors.pop(key)
            dropped.append(KeyNote(sources.pop(key), reason))

    parts = ("decoder.", "encoder_to_decoder.", "mask_token", ENCODER_NORM, "fc_norm.", HEAD, TRACK_MLP)
    has = {part: any(k.startswith(part) for k in tensors) for part in parts}
    has_decoder = has["decoder."] or has["encoder_to_decoder."] or has["mask_token"]
    kept_labels: int | None = None

    if task == "pretraining":
        for prefix in ("fc_norm.", HEAD, TRACK_MLP):
            drop(prefix, "task head of a fine-tuned model; a pretraining model has none")
        if not has_decoder:
            for prefix in ("decoder.", "encoder_to_decoder.", "mask_token"):
                fresh[prefix] = "the source has no MAE decoder: freshly initialised"
            notes.append("the source has no MAE decoder: the decoder is freshly initialised")
        # An MAE encoder ends with a norm before encoder_to_decoder; the model has it iff not use_mean_pooling.
        return TaskFit(tensors, sources, dropped, fresh, not has[ENCODER_NORM], None, notes)

    drop("decoder.", "MAE decoder; not part of a detection/tracking model")
    drop("encoder_to_decoder.", "MAE decoder input projection; not part of a detection/tracking model")
    drop("mask_token", "MAE mask token; not part of a detection/tracking model")
    target_head = "classifier" if task == "detection" else "regressor"

    if has[TRACK_MLP]:
        if task == "tracking" and head != "drop":
            raise ConversionError(
                "the old Medicane tracking head (head.mlp.0 LayerNorm + head.mlp.1 Linear) applies a second "
                "LayerNorm after fc_norm, which MedicaneVideoMAEForTracking has no place for, so its outputs "
                "cannot be reproduced; pass --drop-head to convert the encoder and fc_norm with a fresh regressor"
            )
        drop(
            TRACK_MLP,
            "old tracking regression head (LayerNorm + Linear); not representable, dropped on request"
            if task == "tracking"
            else "old tracking regression head; not part of a detection model",
        )

    if has[HEAD]:
        rows = tensors[f"{HEAD}weight"].shape[0]
        decision = decide_head(task, source_head_kind, head, rows, num_labels)
        if decision.keep:
            if has[ENCODER_NORM] and not has["fc_norm."]:
                raise ConversionError(
                    "the source head reads the first token after a final norm (no mean pooling, no fc_norm); "
                    "medicane detection/tracking models mean-pool into fc_norm, so the head cannot be kept: "
                    "pass --drop-head to convert the encoder with a fresh head"
                )
            for key in [k for k in tensors if k.startswith(HEAD)]:
                name = target_head + "." + key[len(HEAD) :]
                tensors[name] = tensors.pop(key)
                sources[name] = sources.pop(key)
            kept_labels = rows if task == "detection" else None
        else:
            drop(HEAD, decision.reason)

    drop(
        ENCODER_NORM,
        "final encoder norm (MAE encoder / no mean pooling); the "
        f"{task} model mean-pools the tokens into fc_norm instead",
    )
    if not any(k.startswith(target_head + ".") for k in tensors):
        fresh[target_head + "."] = f"new {task} head: freshly initialised, needs training"
        if not has["fc_norm."]:
            fresh["fc_norm."] = f"new {task} head norm: freshly initialised, needs training"
        notes.append(f"the {task} head ({target_head}) is freshly initialised and needs training")
    return TaskFit(tensors, sources, dropped, fresh, True, kept_labels, notes)
