"""How fast the synthetic Mediterranean is written; results in the "synthetic" section of RESULTS.md.

Targets (docs/DESIGN.md, issue "A synthetic Mediterranean"): the demo preset writes 6 days
well under 30 s; the full-grid default preset writes one day (288 frames) in at most 60 s on
a 2-core machine.

    python benchmarks/bench_synthetic.py [--quick]

``--quick`` measures one day of demo and a quarter day of default only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import write_section  # noqa: E402
from medicane_hf.data.synthetic import generate_basin  # noqa: E402
from medicane_hf.data.synthetic.geography import get_geography  # noqa: E402


def measure(preset: str, days: float, workers: int) -> dict[str, float]:
    """Wall and CPU seconds for one generation (the geography raster is built beforehand, once)."""
    out = Path(tempfile.mkdtemp(prefix=f"bench_synth_{preset}_"))
    try:
        cpu0, wall0 = os.times(), time.perf_counter()
        basin = generate_basin(out, days=days, seed=0, preset=preset, progress=False, workers=workers)
        wall = time.perf_counter() - wall0
        cpu1 = os.times()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        cpu += (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
        size_mb = sum(p.stat().st_size for p in basin.frames_dir.rglob("*.png")) / 1e6
        frames = len(basin.frame_times)
        return {
            "frames": frames,
            "wall_s": wall,
            "cpu_s": cpu,
            "cpu_ms_per_frame": 1000 * cpu / frames,
            "mb": size_mb,
            "storms": len(basin.storms),
            "size": f"{basin.grid.width} x {basin.grid.height}",
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short spans only")
    args = parser.parse_args(argv)
    get_geography()  # built once per process; not part of a generation's cost after the first
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    runs = (
        [("demo", 1.0, 1), ("default", 0.25, 1)]
        if args.quick
        else [("demo", 6.0, 1), ("demo", 6.0, 2), ("default", 1.0, 1), ("default", 1.0, 2)]
    )
    lines = [
        "## synthetic",
        "",
        "`medicane-hf synth` / `generate_basin`: frames rendered, PNG-encoded (PIL, compress_level 1, "
        "Huffman-only strategy) and written, plus tracks, truth and faults tables. Targets: demo 6 days "
        "well under 30 s; default (full 1290 x 420 grid) 1 day <= 60 s. CPU s counts the worker "
        "processes too; on a busy machine wall time exceeds CPU time / workers.",
        "",
        "| preset | grid | days | frames | workers | wall s | CPU s | CPU ms/frame | PNG MB | Medicanes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, days, workers in runs:
        r = measure(preset, days, workers)
        print(
            f"{preset} {days} d, {workers} worker(s): {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU",
            flush=True,
        )
        lines.append(
            f"| {preset} | {r['size']} | {days:g} | {r['frames']} | {workers} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['cpu_ms_per_frame']:.1f} | {r['mb']:.0f} | {r['storms']} |"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        f"Load average (1 min) before / after: {load_before:.1f} / {load:.1f} on {os.cpu_count()} cores "
        "(other jobs on the machine slow the wall times).",
    ]
    path = write_section("synthetic", "\n".join(lines))
    print(f"wrote section 'synthetic' of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
