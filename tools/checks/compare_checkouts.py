"""Does a change alter what the app delivers? Runs the app from two checkouts on every study under a folder and
compares SEG pixels, segment labels, RTSTRUCT ROI names and contour points, and the report (timings, output UIDs and
the volumes and choices a report states elsewhere aside).

    python -m tools.checks.compare_checkouts --old /path/to/old/checkout --new . \\
        --data ../shared/data/tcia-brain-tumor-progression --out work/compare

Exit status 1 when any study differs. Outputs already under ``--out`` are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom

TIMINGS = ("stages", "seconds_since_start")
# facts that carry run-specific UIDs, or that a report states in its own field
PER_RUN = ("seg", "rtstruct", "configuration", "GTV_volume_cm3", "Brain_volume_cm3")


def run_app(repo: Path, study: Path, out: Path) -> None:
    if (out / "gtv_report.json").is_file():
        return
    cmd = f"ulimit -s 32768; cd {repo} && {sys.executable} -m app -i {study.resolve()} -o {out.resolve()}"
    subprocess.run(cmd, shell=True, check=True, env={**os.environ, "HOLOSCAN_LOG_LEVEL": "WARN"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def delivered(out: Path) -> dict:
    seg, rt = pydicom.dcmread(out / "gtv_seg.dcm"), pydicom.dcmread(out / "gtv_rtstruct.dcm")
    report = json.loads((out / "gtv_report.json").read_text())
    for k in TIMINGS:
        report.pop(k, None)
    for k in PER_RUN:
        report.get("decisions", {}).pop(k, None)
    return {"seg_pixels": seg.pixel_array, "segments": [s.SegmentLabel for s in seg.SegmentSequence],
            "rois": [r.ROIName for r in rt.StructureSetROISequence],
            "contours": [[tuple(c.ContourData) for c in roi.ContourSequence] for roi in rt.ROIContourSequence],
            "report": report}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--new", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="folder of <patient>/<study> DICOM folders")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    rows = []
    for study in sorted(d for d in a.data.glob("*/*") if d.is_dir()):
        name = f"{study.parent.name}_{study.name}"
        got = {}
        for tag, repo in (("old", a.old), ("new", a.new)):
            run_app(repo, study, a.out / tag / name)
            got[tag] = delivered(a.out / tag / name)
        row = {"study": f"{study.parent.name}/{study.name}"}
        for k in got["old"]:
            x, y = got["old"][k], got["new"][k]
            row[k] = bool(np.array_equal(x, y)) if isinstance(x, np.ndarray) else x == y
        rows.append(row)
        print(json.dumps(row), flush=True)
    (a.out / "comparison.json").write_text(json.dumps(rows, indent=1))
    return 0 if all(all(v for k, v in r.items() if k != "study") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
