"""Write one benchmark's section of benchmarks/RESULTS.md without touching the others."""

from __future__ import annotations

import fcntl
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is written by the script named in it; rerun that script to refresh it.\n"


def machine_line() -> str:
    """One line describing where the figures were measured."""
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, markdown: str) -> Path:
    """Replace (or append) the section `name` of RESULTS.md with `markdown`, stamped with date and machine."""
    # benchmarks may finish together: serialise the read-modify-write so no section is lost
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _replace_section(name, markdown)


def _replace_section(name: str, markdown: str) -> Path:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = f"<!-- BEGIN {name} -->\n{markdown.rstrip()}\n\n_Measured {stamp} on {machine_line()}._\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    RESULTS.write_text(text)
    return RESULTS
