"""Convert old VideoMAE v2 ``.pth`` checkpoints and transformers ``VideoMAE*`` folders into medicane-hf models.

One job per module (the pipeline's docstring tells the whole story):

    options.py   ConversionOptions: every option, declared once (function keywords, config, flags)
    loading.py   read a checkpoint safely (weights-only unpickling), find and unwrap its weights, hash files
    keys.py      translate keys into transformers' VideoMAE names (fused qkv split, sin-cos tables checked)
    heads.py     fit to a task: the head policy table, decoder and final norm kept or dropped with reasons
    config.py    the target config from the tensors' architecture and the caller's config/preset
    model.py     build the model and load the tensors, every model key accounted for
    report.py    KeyNote, ConversionReport (conversion_report.json), ConversionError
    pipeline.py  convert_checkpoint: the steps in order; save_conversion
    command.py   ``medicane-hf convert``
"""

from medicane_hf.convert.command import main
from medicane_hf.convert.config import build_config, infer_architecture
from medicane_hf.convert.heads import HEAD_POLICY, TaskFit, fit_to_task, resolve_task
from medicane_hf.convert.keys import Translation, translate_transformers, translate_videomae_v2
from medicane_hf.convert.loading import (
    WEIGHT_CONTAINERS,
    WRAPPER_PREFIXES,
    LoadedCheckpoint,
    file_sha256,
    load_state_dict_file,
)
from medicane_hf.convert.model import load_into_model, new_model
from medicane_hf.convert.options import TASKS, ConversionOptions, HeadPolicy, Task
from medicane_hf.convert.pipeline import convert_checkpoint, convert_with_options, save_conversion
from medicane_hf.convert.report import REPORT_NAME, ConversionError, ConversionReport, KeyNote

__all__ = [
    "HEAD_POLICY",
    "REPORT_NAME",
    "TASKS",
    "WEIGHT_CONTAINERS",
    "WRAPPER_PREFIXES",
    "ConversionError",
    "ConversionOptions",
    "ConversionReport",
    "HeadPolicy",
    "KeyNote",
    "LoadedCheckpoint",
    "Task",
    "TaskFit",
    "Translation",
    "build_config",
    "convert_checkpoint",
    "convert_with_options",
    "fit_to_task",
    "file_sha256",
    "infer_architecture",
    "load_into_model",
    "load_state_dict_file",
    "main",
    "new_model",
    "resolve_task",
    "save_conversion",
    "translate_transformers",
    "translate_videomae_v2",
]
