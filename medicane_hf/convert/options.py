"""The conversion's options, declared once.

`ConversionOptions` is what `convert_checkpoint` accepts as keywords, what `build_config` reads (the
architecture part), and what the `medicane-hf convert` parser is built from: each field's metadata holds
its flag and help text, so a new option is one field here and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

Task = Literal["auto", "pretraining", "detection", "tracking"]
HeadPolicy = Literal["auto", "keep", "drop"]
TASKS: tuple[str, ...] = ("auto", "pretraining", "detection", "tracking")
PRESETS: tuple[str, ...] = ("tiny", "small", "base", "giant")


def _flag(flag: str | None, help: str, group: str | None = None, **argparse_kwargs: Any) -> dict[str, Any]:
    """Field metadata: the command-line flag (None: set another way), its help, its exclusive group."""
    return {"flag": flag, "help": help, "group": group, "argparse": argparse_kwargs}


@dataclass
class ConversionOptions:
    """What the caller fixed; everything else is read from the checkpoint.

    Field order is the order of the flags in ``medicane-hf convert --help``.
    """

    task: Task = field(
        default="auto",
        metadata=_flag(
            "--task",
            "auto: decoder -> pretraining, old tracking head -> tracking, else detection",
            choices=TASKS,
        ),
    )
    preset: str | None = field(
        default=None,
        metadata=_flag("--preset", "MedicaneVideoMAEConfig preset", "architecture", choices=PRESETS),
    )
    # a MedicaneVideoMAEConfig, a config.json path or a folder holding one, or None
    config: Any = field(
        default=None,
        metadata=_flag(
            "--config",
            "config.json (or a folder holding one) fixing the architecture",
            "architecture",
            type=Path,
        ),
    )
    num_attention_heads: int | None = field(
        default=None,
        metadata=_flag("--num-heads", "encoder attention heads (needed for non-standard widths)", type=int),
    )
    decoder_num_attention_heads: int | None = field(
        default=None,
        metadata=_flag("--decoder-num-heads", "decoder attention heads (non-standard widths)", type=int),
    )
    image_size: int | None = field(  # pixels
        default=None,
        metadata=_flag("--image-size", "input tile size in pixels (default: config/preset, 224)", type=int),
    )
    num_frames: int | None = field(
        default=None, metadata=_flag("--num-frames", "frames per clip (default: config/preset, 16)", type=int)
    )
    num_labels: int | None = field(
        default=None, metadata=_flag("--num-labels", "detection classes", type=int)
    )
    # --keep-head / --drop-head on the command line (two switches for one three-way choice)
    head: HeadPolicy = field(default="auto", metadata=_flag(None, "auto | keep | drop"))
    allow_unsafe_pickle: bool = field(
        default=False,
        metadata=_flag(
            "--allow-unsafe-pickle",
            "unpickle arbitrary Python objects; ONLY for checkpoints you made yourself",
            action="store_true",
        ),
    )
    weights_key: str | None = field(
        default=None,
        metadata=_flag(
            "--weights-key",
            "checkpoint entry holding the weights, e.g. model_ema (default: model/module/...)",
        ),
    )

    @classmethod
    def names(cls) -> list[str]:
        """The option names, in declaration order."""
        return [f.name for f in fields(cls)]


# The head switches of the command line: flag -> (`head` value, help).
HEAD_FLAGS: dict[str, tuple[HeadPolicy, str]] = {
    "--keep-head": ("keep", "keep the source head whatever its size"),
    "--drop-head": ("drop", "drop the source head; start a fresh one"),
}
