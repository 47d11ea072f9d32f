"""The ``medicane-hf`` command.

Each sub-command lives in the module that does the work and exposes
``main(argv: list[str] | None) -> int`` and ``build_parser() -> argparse.ArgumentParser``;
this file only dispatches, importing lazily so that ``medicane-hf --help`` stays
fast and one broken stage does not take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("medicane_hf.data.synthetic.command", "Write a synthetic Mediterranean: frames + tracks file."),
    "build-dataset": ("medicane_hf.data.build", "Frames folder + tracks file -> packed store + clip index."),
    "convert": (
        "medicane_hf.convert.command",
        "Old VideoMAE v2 .pth or HF VideoMAE -> save_pretrained folder.",
    ),
    "push": ("medicane_hf.hub.push", "Push a model folder (code, weights, processor, card) to a Hub repo."),
    "predict-track": ("medicane_hf.tracking.command", "Frames -> detections, tracks, scores, map and animation."),
}


def command_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of sub-command `name`: parse a command line with it without running the command."""
    if name not in SUBCOMMANDS:
        raise ValueError(f"unknown command {name!r}; the commands are {tuple(SUBCOMMANDS)}")
    return importlib.import_module(SUBCOMMANDS[name][0]).build_parser()


def _usage() -> str:
    lines = ["usage: medicane-hf <command> [options]", "", "commands:"]
    width = max(len(name) for name in SUBCOMMANDS)
    for name, (_, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    lines.append("")
    lines.append("Run `medicane-hf <command> --help` for the options of one command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a sub-command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"medicane-hf: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
