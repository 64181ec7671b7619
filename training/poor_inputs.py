"""Poor inputs made from a real study: studies the app can process but should not trust, as such mistakes happen in a
department. The quality verdict's tests and ``python -m training evaluate-poor-inputs`` (the rows of docs/quality.md)
build them from the TCIA study's own files; the source files are read, never modified.

* :func:`t1pre_as_t1c`: the pre-contrast T1 (T1prereg) sent as the post-contrast one;
* :func:`shifted_series`: FLAIR moved by 10 mm within the same frame of reference (not registered);
* :func:`upper_slices`: only the upper half of the slices (part of the brain not imaged).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset

logger = logging.getLogger(__name__)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _rewrite(src: Path, dst: Path, edit: Callable[[Path, Dataset], Dataset | None]) -> Path:
    """Every file of ``src`` to the same relative path in ``dst`` through ``edit`` (None leaves the file out)."""
    for path in _files(src):
        rel = path.relative_to(src)
        ds = edit(rel, pydicom.dcmread(path))
        if ds is not None:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(dst / rel, enforce_file_format=True)
    return dst


def _in_position_order(folder: Path) -> list[Path]:
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in _files(folder)}
    iop = np.asarray(next(iter(headers.values())).ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(headers, key=lambda p: float(np.asarray(headers[p].ImagePositionPatient, dtype=float) @ normal))


def t1pre_as_t1c(study: Path, dst: Path, source: Path, *, t1c: str = "T1post", t1pre: str = "T1prereg") -> Path:
    """``study`` with the pre-contrast T1 of ``source`` (registered to T1post) in place of its post-contrast series,
    labelled post-contrast by mistake ("T1 AX POST"), its own headers otherwise unchanged (no contrast agent
    recorded). ``study`` may be a copy of ``source`` with other identifying values; those are kept."""
    _rewrite(study, dst, lambda rel, ds: None if rel.parts[0] == t1c else ds)
    like = pydicom.dcmread(_files(study / t1c)[0], stop_before_pixels=True)
    for path in _files(source / t1pre):
        ds = pydicom.dcmread(path)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "ReferringPhysicianName",
                        "OperatorsName", "PerformingPhysicianName", "InstitutionName", "OtherPatientIDs"):
            if keyword in like:
                setattr(ds, keyword, like.data_element(keyword).value)
        ds.SeriesDescription = "T1 AX POST"
        (dst / "T1").mkdir(parents=True, exist_ok=True)
        ds.save_as(dst / "T1" / path.name, enforce_file_format=True)
    return dst


def shifted_series(study: Path, dst: Path, *, series: str = "FLAIRreg", shift_mm: float = 10.0) -> Path:
    """``series`` moved by ``shift_mm`` along the patient's left-right axis (ImagePositionPatient), in the same frame
    of reference: a series that is not registered to T1post although its headers say it is."""

    def edit(rel: Path, ds: Dataset) -> Dataset:
        if rel.parts[0] == series:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [round(x + shift_mm, 4), y, z]
        return ds

    return _rewrite(study, dst, edit)


def upper_slices(study: Path, dst: Path, fraction: float = 0.5, *, lower: bool = False) -> Path:
    """Only the upper (head-most) ``fraction`` of every series' slices: a study that covers part of the brain; with
    ``lower``, the lower (feet-most) fraction instead (on PGBM-001 1992-04-02, a slab without the tumour)."""
    kept = set()
    for folder in sorted({p.relative_to(study).parts[0] for p in _files(study)}):
        files = _in_position_order(study / folder)
        first, last = (pydicom.dcmread(files[i], stop_before_pixels=True) for i in (0, -1))
        ascending = (float(last.ImagePositionPatient[2]) > float(first.ImagePositionPatient[2])) != lower
        n = int(round(len(files) * fraction))
        kept.update(p.relative_to(study) for p in (files[-n:] if ascending else files[:n]))
    return _rewrite(study, dst, lambda rel, ds: ds if rel in kept else None)


def evaluate_poor_inputs(models: str | Path, study: str | Path, out: str | Path, *, device: str = "auto") -> dict:
    """The three poor inputs made from ``study`` (a TCIA study with T1post, T1prereg, FLAIRreg, MaskTumor) through
    the app's path; ``out/metrics.json`` in evaluate-dicom's layout (Dice against MaskTumor, quality)."""
    from operators.core.model.predictor import load_models
    from operators.core.selection.rules import load_rules
    from training.dicom_eval import APP_RULES, evaluate_study

    study, out = Path(study), Path(out)
    loaded, rules = load_models(models, device=device), load_rules(APP_RULES)
    series = ("T1post", "FLAIRreg", "T2reg", "MaskTumor")
    root = Path(tempfile.mkdtemp(prefix="poor-inputs-"))
    try:
        plain = root / "plain"
        for name in series:
            for path in _files(study / name):
                (plain / name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, plain / name / path.name)
        cases = {"t1pre_as_t1c": t1pre_as_t1c(plain, root / "t1pre", study),
                 "flair_shifted_10mm": shifted_series(plain, root / "flair"),
                 "upper_half": upper_slices(plain, root / "upper")}
        per = {}
        for name, folder in cases.items():
            per[name] = evaluate_study(folder, loaded, rules)
            logger.info("%s: Dice %.3f, quality %s", name, per[name]["dsc"], per[name]["quality"]["verdict"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    result = {"models": str(models), "source": study.name, "studies": per}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
