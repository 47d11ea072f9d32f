"""The convert package's own pieces: the head policy table and the options declared once."""

from __future__ import annotations

import itertools

import pytest

from medicane_hf.convert import HEAD_POLICY, ConversionError, ConversionOptions, convert_checkpoint
from medicane_hf.convert.command import _options, build_parser
from medicane_hf.convert.heads import decide_head


def test_head_policy_lists_every_combination():
    combos = set(
        itertools.product(("detection", "tracking"), ("classifier", "regressor"), ("auto", "keep", "drop"))
    )
    assert set(HEAD_POLICY) == combos


@pytest.mark.parametrize(
    ("task", "kind", "head", "rows", "num_labels", "keep", "reason"),
    [
        ("detection", "classifier", "auto", 2, None, True, ""),
        ("detection", "classifier", "auto", 3, None, True, ""),
        ("detection", "classifier", "auto", 710, None, False, "710-class head"),
        ("detection", "classifier", "auto", 3, 2, False, "does not fit num_labels=2"),
        ("detection", "classifier", "keep", 710, None, True, ""),
        ("detection", "regressor", "auto", 2, None, False, "tracking regressor is not a classifier"),
        ("detection", "regressor", "keep", 2, None, True, ""),
        ("tracking", "classifier", "auto", 2, None, False, "not a position regressor"),
        ("tracking", "classifier", "keep", 2, None, True, ""),
        ("tracking", "regressor", "auto", 2, None, True, ""),
        ("tracking", "regressor", "drop", 2, None, False, "dropped on request"),
        ("detection", "classifier", "drop", 2, None, False, "dropped on request"),
    ],
)
def test_one_rule_gives_both_the_decision_and_its_reason(task, kind, head, rows, num_labels, keep, reason):
    decision = decide_head(task, kind, head, rows, num_labels)
    assert decision.keep is keep
    assert reason in decision.reason and (decision.reason == "") is keep


@pytest.mark.parametrize(
    ("task", "kind", "rows", "num_labels", "message"),
    [
        ("detection", "classifier", 710, 2, "has 710 classes but num_labels=2"),
        ("tracking", "classifier", 710, None, "has 710 outputs, a tracking regressor has 2"),
    ],
)
def test_a_keep_head_that_cannot_be_honoured_is_an_error(task, kind, rows, num_labels, message):
    with pytest.raises(ConversionError, match=message):
        decide_head(task, kind, "keep", rows, num_labels)


def test_the_parser_is_built_from_the_options():
    parser = build_parser()
    dests = {action.dest for action in parser._actions} - {"help", "checkpoint", "out", "overwrite"}
    assert dests == (set(ConversionOptions.names()) - {"head"}) | {"keep_head", "drop_head"}
    args = parser.parse_args(["--checkpoint", "x.pth", "--out", "o", "--num-heads", "6", "--drop-head"])
    assert _options(args) == ConversionOptions(num_attention_heads=6, head="drop")
    assert _options(parser.parse_args(["--checkpoint", "x", "--out", "o"])) == ConversionOptions()


def test_convert_checkpoint_accepts_only_declared_options(tmp_path):
    with pytest.raises(TypeError, match="num_heads"):
        convert_checkpoint(tmp_path / "missing.pth", num_heads=6)


def test_every_convert_task_is_the_model_of_a_registry_stage():
    from medicane_hf.convert.config import CONVERT_TASK_STAGES, config_classes
    from medicane_hf.convert.options import TASKS as CONVERT_TASKS
    from medicane_hf.tasks import TASKS

    assert set(CONVERT_TASK_STAGES) == set(CONVERT_TASKS) - {"auto"}
    classes = config_classes()[1]
    for task, stage in CONVERT_TASK_STAGES.items():
        assert classes[task].__name__ == TASKS[stage].model_class_name
