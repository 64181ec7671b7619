"""``python -m training evaluate-dicom``: the app's GTV on real DICOM studies against their reference mask.

Writes ``OUT/metrics.json`` and, per study, ``OUT/<patient>_<date>.png``: the GTV, the reference and the brain mask
outlined over T1post on the slices through the GTV and the reference.

For each study folder under ``--data`` (the TCIA Brain-Tumor-Progression layout: series folders ``T1post``,
``FLAIRreg``, ... and a Secondary Capture ``MaskTumor``), run the app's own code path in-process (series selection,
volumes, brain extraction, GTV) and measure on the T1post grid:

* Dice of the GTV against ``MaskTumor`` (non-zero = tumour);
* the GTV the network predicted outside the brain mask (before the app removes it), in cm3;
* the share of ``MaskTumor`` covered by the brain mask (the region, with the brain model's margin, where the app
  keeps a GTV) and by the brain tissue alone (the normalisation region);
* where the Dice is lost: the share of ``MaskTumor`` inside the GTV, the share of the GTV inside ``MaskTumor``, and
  the share of the GTV within 10 mm of ``MaskTumor``;
* Dice against ``MaskTumor``'s outline: the mask closed (2 mm) and filled slice by slice, so enhancing rim plus the
  cavity or necrosis it encloses, nearer to what a pre-operative GTV (enhancing tumour plus necrosis) contours.

These studies are post-operative: ``MaskTumor`` outlines enhancing tumour around a resection cavity, not a
pre-operative GTV (enhancing tumour plus necrosis), so a perfect pre-operative GTV model would not reach Dice 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from operators.core.case import BrainMask
from operators.core.dicom.folder import scan_folder
from operators.core.dicom.series import Study
from operators.core.dicom.volume import series_to_volume
from operators.core.geometry import Volume, resample
from operators.core.model.predictor import Mirroring, load_models
from operators.core.model.spec import ModelSpec, find_gtv_models
from operators.core.pipeline import segment
from operators.core.selection.configuration import choose_configuration
from operators.core.selection.series import load_rules, select_series
from operators.core.selection.study import choose_study
from operators.core.steps.quality import Quality
from operators.core.writers.report import render_png
from training.metrics import quality_entry, segmentation_metrics, summarise

logger = logging.getLogger(__name__)

SC_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def find_studies(root: Path) -> list[Path]:
    """Folders under ``root`` that hold a ``MaskTumor`` series folder (``<patient>/<date>/MaskTumor``)."""
    return sorted(p.parent for p in Path(root).rglob("MaskTumor") if p.is_dir())


def reference_mask(study: Study):
    """The study's Secondary Capture tumour mask as a bool volume (on its own grid, the T1post grid here)."""
    sc = [s for s in study.series if s.sop_class_uid == SC_SOP_CLASS]
    if len(sc) != 1:
        raise ValueError(f"study {study.study_instance_uid}: expected one Secondary Capture mask series, "
                         f"found {len(sc)}")
    vol, _ = series_to_volume(sc[0])
    return vol.with_array(vol.array > 0)


def outline(mask: np.ndarray, spacing_zyx: tuple[float, float, float], *, closing_mm: float = 2.0) -> np.ndarray:
    """``mask`` closed in-plane by ``closing_mm`` and with its holes filled, slice by slice (the studies' slices are
    5 mm thick with gaps, so in-plane is where a rim encloses its cavity)."""
    from skimage.morphology import ellipse

    ry, rx = (max(1, round(closing_mm / s)) for s in spacing_zyx[1:])
    footprint = ellipse(rx, ry).astype(bool)  # (2 ry + 1, 2 rx + 1)
    return np.stack([ndimage.binary_fill_holes(ndimage.binary_closing(sl, footprint, border_value=0)) for sl in mask])


@dataclass(frozen=True)
class SegmentedStudy:
    """One study through the app's code path, on the T1post grid.

    Attributes:
        t1c: the T1post volume (the reference grid).
        reference: MaskTumor, bool.
        gtv: the app's GTV, bool.
        unrestricted: the GTV before the app restricts it to the brain region, bool.
        brain: the brain mask, or None without a brain-extraction model.
        quality: the app's quality verdict with its signals.
    """

    t1c: Volume
    reference: np.ndarray
    gtv: np.ndarray
    unrestricted: np.ndarray
    brain: BrainMask | None
    quality: Quality | None = None
    spec: ModelSpec | None = None


def load_study(study_dir: Path, channels: tuple[str, ...], rules: dict) -> tuple[Study, list[Volume], tuple]:
    """The app's input steps: the study in a folder, its series selected per channel, their volumes, and the
    reference (first) series' headers in slice order."""
    study = choose_study(scan_folder(study_dir), channels=channels, rules=rules)
    return (study, *read_channels(study, channels, rules))


def read_channels(study: Study, channels: tuple[str, ...], rules: dict) -> tuple[list[Volume], tuple]:
    """The volumes of the series selected per channel, and the reference (first) series' headers in slice order."""
    read = [series_to_volume(s.series) for s in select_series(study, channels, rules)]
    return [v for v, _ in read], read[0][1]


class AppModels:
    """Every GTV model (channel configuration) of a models folder, chosen per study as the app chooses
    (:mod:`operators.core.selection.configuration`), each loaded on first use."""

    def __init__(self, root: str | Path, *, device: str = "auto", mirror: Mirroring | None = None) -> None:
        self.root, self.device, self.mirror = Path(root), device, mirror
        self.specs = find_gtv_models(root)
        self._loaded: dict[Path, tuple] = {}

    def for_study(self, studies, rules: dict) -> tuple[Study, tuple]:
        """The study to contour and ``(spec, predictor, brain)`` of the configuration it supports."""
        conf = choose_configuration(studies, self.specs, rules)
        if conf.spec.root not in self._loaded:
            self._loaded[conf.spec.root] = load_models(self.root, device=self.device, spec=conf.spec,
                                                        mirror=self.mirror)
        return conf.study, self._loaded[conf.spec.root]


def without_series(studies, pattern: str | None):
    """The studies without the series whose SeriesDescription matches ``pattern`` (case-insensitive regex)."""
    if not pattern:
        return studies
    return [dataclasses.replace(s, series=tuple(x for x in s.series if not re.search(pattern, x.description, re.I)))
            for s in studies]


def segment_study(study_dir: Path, models: tuple | AppModels, rules: dict, *, exclude: str | None = None
                  ) -> SegmentedStudy:
    """The app's GTV for one study. ``models``: ``(spec, predictor, brain)`` as
    :func:`operators.core.model.predictor.load_models` returns them, or :class:`AppModels` (the configuration the
    study supports, as the app chooses it); ``exclude``: leave out the series whose description matches."""
    studies = without_series(scan_folder(study_dir), exclude)
    if isinstance(models, AppModels):
        study, models = models.for_study(studies, rules)
    else:
        study = choose_study(studies, channels=models[0].preprocessing.channels, rules=rules)
    spec, predictor, brain_model = models
    vols, headers = read_channels(study, spec.preprocessing.channels, rules)
    ref = reference_mask(study)
    if not ref.grid.same_as(vols[0].grid):
        raise ValueError(f"{study_dir}: MaskTumor is not on the T1c grid")
    result = segment(vols, spec, predictor, brain_model=brain_model, headers=headers)
    return SegmentedStudy(t1c=result.channels[0], reference=ref.array, gtv=result.gtv,
                          unrestricted=result.unrestricted, brain=result.brain, quality=result.quality, spec=spec)


def evaluate_study(study_dir: Path, models: tuple | AppModels, rules: dict, *, picture: Path | None = None,
                   exclude: str | None = None) -> dict:
    """Metrics of one study (:func:`segment_study`). With ``picture``, a PNG of the GTV (red), MaskTumor (green) and
    brain mask (blue) over T1post."""
    seg = segment_study(study_dir, models, rules, exclude=exclude)
    gtv, ref, brain_mask = seg.gtv, seg.reference, seg.brain
    brain = brain_mask.region.array if brain_mask else None
    if picture is not None:
        spec = seg.spec
        others = [(ref, (0, 255, 0))] + ([(brain, (60, 120, 255))] if brain is not None else [])
        render_png(picture, seg.t1c, seg.t1c.with_array(gtv), others=others,
                   title=f"{spec.name} {spec.version}: GTV red, MaskTumor green, brain mask (with margin) blue")
    spacing_zyx = seg.t1c.grid.spacing_zyx
    voxel_cm3 = seg.t1c.grid.voxel_volume_mm3 / 1000
    tissue_cm3, region_cm3 = brain_mask.cm3() if brain_mask else (None, None)
    result = segmentation_metrics(gtv, ref, spacing_zyx)
    both = float((gtv & ref).sum())
    distance = ndimage.distance_transform_edt(~ref, sampling=spacing_zyx)  # mm from MaskTumor
    result.update({
        "dsc_vs_outline": segmentation_metrics(gtv, outline(ref, spacing_zyx), spacing_zyx)["dsc"],
        "gtv_within_10mm_fraction": float((gtv & (distance <= 10.0)).sum()) / max(float(gtv.sum()), 1.0),
        "gtv_farther_than_20mm_cm3": float((gtv & (distance > 20.0)).sum() * voxel_cm3),
        # Dice split into its two sides: how much of MaskTumor the GTV covers, and how much of the GTV is MaskTumor
        "reference_covered_fraction": both / max(float(ref.sum()), 1.0),
        "gtv_in_reference_fraction": both / max(float(gtv.sum()), 1.0),
        "outside_brain_predicted_cm3": float((seg.unrestricted & ~brain).sum() * voxel_cm3) if brain_mask else None,
        "gtv_outside_brain_cm3": float((gtv & ~brain).sum() * voxel_cm3) if brain_mask else None,
        "reference_in_brain_fraction": float((ref & brain).sum() / max(ref.sum(), 1)) if brain_mask else None,
        "reference_in_tissue_fraction": float((ref & brain_mask.tissue.array).sum() / max(ref.sum(), 1))
        if brain_mask else None,
        "brain_cm3": tissue_cm3,
        "brain_region_cm3": region_cm3,
        "quality": quality_entry(seg.quality),
        "channels": list(seg.spec.preprocessing.channels),
        "model": seg.spec.identity(),
    })
    return result


#: The series rules the app ships (read as a file: training never imports the app).
APP_RULES = Path(__file__).resolve().parents[1] / "app" / "series_rules.json"


def evaluate_dicom(models: str | Path, data: str | Path, out: str | Path, *, rules: Path = APP_RULES,
                   device: str = "auto", exclude: str | None = None, mirror: str = "") -> dict:
    """Evaluate every study under ``data`` with the GTV model the app would choose for it (``exclude``: leave out
    the series whose description matches, e.g. ``FLAIR``; ``mirror``: test-time mirroring axes of the GTV model);
    write ``out/metrics.json`` and return it."""
    rules_dict = load_rules(rules)
    loaded = AppModels(models, device=device, mirror=Mirroring(mirror))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    studies = find_studies(Path(data))
    per = {}
    for s in studies:
        name = str(s.relative_to(data))
        per[name] = evaluate_study(s, loaded, rules_dict, picture=out / f"{name.replace('/', '_')}.png",
                                   exclude=exclude)
        logger.info("%s: %s", name, {k: round(v, 4) if isinstance(v, float) else v for k, v in per[name].items()})
    result = {"models": str(models), "excluded_series": exclude, "studies": per,
              "summary": {k: summarise([v[k] for v in per.values() if v[k] is not None])
                          for k in ("dsc", "hd95_mm", "asd_mm", "outside_brain_predicted_cm3",
                                    "reference_in_brain_fraction", "reference_in_tissue_fraction",
                                    "reference_covered_fraction", "gtv_in_reference_fraction",
                                    "gtv_within_10mm_fraction", "dsc_vs_outline")}}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def brats_read_back(case, variant: str, channels: tuple[str, ...], rules: dict
                    ) -> tuple[Volume, Volume, list[Volume], tuple]:
    """A BraTS case written as a DICOM study (:func:`training.brats_dicom.write_study`, in a temporary folder) and
    read back by the app's input steps: ``(T1c as written, tumour core, the app's volumes, reference headers)``."""
    import shutil
    import tempfile

    from training.brats_dicom import write_study

    folder = Path(tempfile.mkdtemp(prefix="brats-dicom-"))
    try:
        written, reference = write_study(case, folder, variant)
        _, vols, headers = load_study(folder, channels, rules)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return written, reference, vols, headers


def evaluate_brats_dicom(models: str | Path, data: str | Path, out: str | Path, *, case_ids: list[str],
                         variants: list[str], rules: Path = APP_RULES, device: str = "auto") -> dict:
    """BraTS cases written as DICOM studies (:mod:`training.brats_dicom`), read back and segmented by the app's
    steps; per case and variant: the brain mask's Dice against the non-zero (skull-stripped) brain and the brain it
    leaves out, and the GTV's DSC, HD95 and ASD against the tumour core, on the written T1c grid."""
    from training.brats import find_cases
    from training.train import dice

    rules_dict = load_rules(rules)
    loaded = load_models(models, device=device)
    spec = loaded[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per: dict = {}
    for case in find_cases(data, ("T1c", "FLAIR"), case_ids=case_ids):
        for variant in variants:
            written, reference, vols, headers = brats_read_back(case, variant, spec.preprocessing.channels,
                                                                rules_dict)
            result = segment(vols, spec, loaded[1], brain_model=loaded[2], headers=headers)
            t1c = result.channels[0]
            if not t1c.grid.same_as(reference.grid):
                # the app's volume may list the slices in the other order: compare on the app's grid
                reference = resample(reference, t1c.grid, interpolation="nearest")
                written = resample(written, t1c.grid, interpolation="nearest")
            stripped = written.array > 0
            spacing_zyx = t1c.grid.spacing_zyx
            entry = segmentation_metrics(result.gtv, reference.array, spacing_zyx)
            brain = result.brain.tissue.array
            voxel_cm3 = t1c.grid.voxel_volume_mm3 / 1000
            entry.update({"brain_skull_stripped": result.brain.skull_stripped,
                          "brain_dsc_vs_nonzero": dice(brain, stripped),
                          "brain_missed_cm3": float((stripped & ~brain).sum() * voxel_cm3),
                          "brain_extra_cm3": float((brain & ~stripped).sum() * voxel_cm3)})
            logger.info("%s %s: %s", case.case_id, variant, {k: round(float(v), 4) for k, v in entry.items()})
            entry["quality"] = quality_entry(result.quality)
            per.setdefault(variant, {})[case.case_id] = entry
    result = {"models": str(models), "cases": per,
              "summary": {v: {k: summarise([e[k] for e in c.values()])
                              for k in ("dsc", "hd95_mm", "asd_mm", "brain_dsc_vs_nonzero", "brain_missed_cm3")}
                          for v, c in per.items()}}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
