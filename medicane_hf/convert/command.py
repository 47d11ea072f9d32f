"""``medicane-hf convert``: the argument parser, built from `ConversionOptions`, and ``main``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from medicane_hf.convert.options import HEAD_FLAGS, ConversionOptions
from medicane_hf.convert.pipeline import convert_with_options
from medicane_hf.convert.report import ConversionError


def build_parser() -> argparse.ArgumentParser:
    """Flags in `ConversionOptions` order; options sharing a metadata ``group`` exclude each other."""
    parser = argparse.ArgumentParser(
        prog="medicane-hf convert",
        description="Convert an old VideoMAE v2 .pth checkpoint or a transformers VideoMAE folder into a "
        "medicane-hf save_pretrained folder, with a report of every key.",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help=".pth/.safetensors file or transformers folder"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (save_pretrained + report)")
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for option in fields(ConversionOptions):
        meta = option.metadata
        if option.name == "head":  # one three-way choice, two switches
            heads = parser.add_mutually_exclusive_group()
            for flag, (_, help_text) in HEAD_FLAGS.items():
                heads.add_argument(flag, action="store_true", help=help_text)
            continue
        target: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup = parser
        if meta["group"] is not None:
            if meta["group"] not in groups:
                groups[meta["group"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["group"]]
        kwargs = dict(meta["argparse"])
        if "choices" not in kwargs and kwargs.get("action") != "store_true":
            # the metavar argparse would derive from the flag (dest is the option's longer name)
            kwargs["metavar"] = meta["flag"].lstrip("-").replace("-", "_").upper()
        if option.default is not None:
            kwargs.setdefault("default", option.default)
        target.add_argument(meta["flag"], dest=option.name, help=meta["help"], **kwargs)
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
    return parser


def _options(args: argparse.Namespace) -> ConversionOptions:
    """The parsed flags as `ConversionOptions` (``--keep-head`` / ``--drop-head`` -> ``head``)."""
    values = {name: getattr(args, name) for name in ConversionOptions.names() if name != "head"}
    chosen = [
        value for flag, (value, _) in HEAD_FLAGS.items() if getattr(args, flag.lstrip("-").replace("-", "_"))
    ]
    return ConversionOptions(**values, head=chosen[0] if chosen else "auto")


def main(argv: list[str] | None = None) -> int:
    """``medicane-hf convert``: returns 0 on success, 1 on a conversion error (printed to stderr)."""
    args = build_parser().parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"medicane-hf convert: --out {args.out} is a file, not a folder", file=sys.stderr)
        return 1
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        print(f"medicane-hf convert: {args.out} is not empty (pass --overwrite)", file=sys.stderr)
        return 1
    try:
        _, report = convert_with_options(args.checkpoint, args.out, _options(args))
    except ConversionError as error:
        print(f"medicane-hf convert: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0
