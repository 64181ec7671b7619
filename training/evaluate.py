"""``python -m training evaluate``: run an exported model on every case of a BraTS-layout folder.

For each case folder it writes ``OUT/<case>.nii.gz``, the binary GTV on the case's own grid, through the app's own
code path (:func:`operators.core.contour.contour`), and ``OUT/metrics.json`` with per-case and mean DSC, HD95 and
ASD (mm, physical spacing) where a ``_seg`` exists.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from operators.core.brain import BrainMask
from operators.core.contour import contour
from operators.core.geometry import volume_to_sitk
from operators.core.model_spec import find_model
from operators.core.predictor import make_predictor
from training.brats import TUMOUR_CORE_LABELS, find_cases, read_tumour_core, read_volume, skull_stripped_brain_mask
from training.metrics import segmentation_metrics, summarise

logger = logging.getLogger(__name__)


def evaluate(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *, case_ids: list[str] | None = None,
             device: str = "auto", progress: bool = True) -> dict:
    """Segment every case; return (and write) the metrics dict."""
    spec = find_model(model_dir)
    predictor = make_predictor(spec, device=device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = find_cases(data_dir, spec.preprocessing.channels, case_ids=case_ids)
    # the BraTS labels the model was trained to find (tumour core unless its training facts say otherwise)
    brats_labels = tuple(spec.metadata.get("training", {}).get("brats_labels", TUMOUR_CORE_LABELS))
    per_case = {}
    for case in tqdm(cases, desc="evaluate", disable=not progress):
        t0 = time.perf_counter()
        channels = [read_volume(p) for p in case.channel_paths]
        # BraTS-layout data is skull-stripped: its brain mask is its non-zero region (the app uses a brain model).
        brain = skull_stripped_brain_mask(channels) if spec.preprocessing.brain_mask_model else None
        mask = contour(channels, spec, predictor,
                       brain_mask=BrainMask.without_margin(brain) if brain is not None else None)[0].mask
        image = volume_to_sitk(mask.with_array(mask.array.astype(np.uint8)))
        sitk.WriteImage(image, str(out / f"{case.case_id}.nii.gz"), useCompression=True)
        entry = {"seconds": round(time.perf_counter() - t0, 2)}
        if case.seg_path is not None:
            ref = read_tumour_core(case, brats_labels)
            spacing_zyx = tuple(float(s) for s in ref.grid.spacing[::-1])
            entry.update(segmentation_metrics(mask.array, ref.array, spacing_zyx))
        per_case[case.case_id] = entry
        logger.info("%s: %s", case.case_id, {k: round(v, 4) for k, v in entry.items()})
    scored = [v for v in per_case.values() if "dsc" in v]
    result = {
        "model": spec.identity(),
        "data": str(data_dir),
        "cases": per_case,
        "summary": {k: summarise([v[k] for v in scored]) for k in ("dsc", "hd95_mm", "asd_mm")} if scored else {},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
