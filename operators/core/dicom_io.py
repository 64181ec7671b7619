"""Find the DICOM studies in an input folder, and pick the one study to contour.

:func:`scan_folder` reads headers only (``stop_before_pixels=True``) from every file under a folder, whatever the
layout and file names, and groups them by StudyInstanceUID then SeriesInstanceUID. Enhanced (multi-frame) MR
instances are split into one :class:`Instance` per frame, whose header carries that frame's geometry, so that the
rest of the pipeline sees single-frame slices. :func:`choose_study` applies the documented rule for inputs that
hold several studies. Logs and messages name files by path relative to the input folder and studies by UID; they
never carry patient names, IDs, birth dates or accession numbers.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError

from operators.core.dicom_series import Instance, Series, Study
from operators.core.errors import InputDataError, SeriesSelectionError
from operators.core.selection import assign_series, is_selectable

logger = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_LISTED = 3  # how many example paths a summary log line names

# Header read failures on files that do start like DICOM (truncated or malformed headers).
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error)

# Functional-group macros copied into each frame's header: sequence keyword -> attributes taken from its item.
_FRAME_GROUPS: dict[str, tuple[str, ...]] = {
    "PlanePositionSequence": ("ImagePositionPatient",),
    "PlaneOrientationSequence": ("ImageOrientationPatient",),
    "PixelMeasuresSequence": ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"),
    "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
    "MRTimingAndRelatedParametersSequence": ("RepetitionTime", "FlipAngle"),
    "MRImageFrameTypeSequence": ("FrameType",),
    "MRModifierSequence": ("InversionRecovery",),
    "ContrastBolusUsageSequence": ("ContrastBolusAgentAdministered",),
}
_SPLIT_AWAY = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")


def scan_folder(root: Path) -> list[Study]:
    """Read every DICOM header under ``root`` and group the instances into studies and series.

    Non-DICOM files (no ``DICM`` preamble) are skipped with one warning; so are files that start like DICOM but
    whose header cannot be parsed, files without Study/Series/SOP Instance UIDs, and DICOMDIR files (the folder
    itself is scanned). An instance seen twice (same SOPInstanceUID) is kept once, with a warning.

    Returns:
        Studies in the order their first file is found (paths sorted); each study's series sorted by SeriesNumber.
        Instances are in path order, not slice order.

    Raises:
        InputDataError: ``root`` is not a folder, is empty, or holds no usable DICOM instance.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"input folder {root} does not exist or is not a folder")
    files = _list_files(root)
    if not files:
        raise InputDataError(f"input folder {root} is empty: no files found (subfolders included)")

    not_dicom: list[Path] = []
    unreadable: list[str] = []
    no_uids: list[Path] = []
    dicomdirs: list[Path] = []
    duplicates: list[tuple[Path, Path]] = []
    seen: dict[str, Path] = {}
    grouped: dict[str, dict[str, list[Instance]]] = {}
    for path in files:
        rel = path.relative_to(root)
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, force=False)
        except InvalidDicomError:
            not_dicom.append(rel)
            continue
        except _READ_ERRORS as exc:
            unreadable.append(f"{rel} ({type(exc).__name__}: {exc})")
            continue
        meta_class = str(getattr(header, "file_meta", Dataset()).get("MediaStorageSOPClassUID", ""))
        if meta_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in header:
            dicomdirs.append(rel)
            continue
        sop_uid = str(header.get("SOPInstanceUID", "") or "")
        study_uid = str(header.get("StudyInstanceUID", "") or "")
        series_uid = str(header.get("SeriesInstanceUID", "") or "")
        if not (sop_uid and study_uid and series_uid):
            no_uids.append(rel)
            continue
        if sop_uid in seen:
            duplicates.append((rel, seen[sop_uid]))
            continue
        seen[sop_uid] = rel
        bucket = grouped.setdefault(study_uid, {}).setdefault(series_uid, [])
        if _is_multiframe_functional(header):
            bucket.extend(Instance(path=path, header=h, frame=f) for f, h in enumerate(frame_headers(header)))
        else:
            bucket.append(Instance(path=path, header=header))

    _log_skipped(not_dicom, unreadable, no_uids, dicomdirs, duplicates)
    if not grouped:
        raise InputDataError(
            f"input folder {root} holds no usable DICOM instance: {len(files)} file(s), {len(not_dicom)} not DICOM, "
            f"{len(unreadable)} unreadable, {len(no_uids)} without UIDs, {len(dicomdirs)} DICOMDIR"
        )
    studies = []
    for study_uid, by_series in grouped.items():
        series = sorted((_series(uid, found) for uid, found in by_series.items()), key=_series_order)
        studies.append(Study(study_instance_uid=study_uid, series=tuple(series)))
    logger.info(
        "scanned %d file(s): %d instance(s)/frame(s) in %d series of %d study(ies)",
        len(files), sum(len(se.instances) for st in studies for se in st.series),
        sum(len(st.series) for st in studies), len(studies),
    )
    return studies


def _list_files(root: Path) -> list[Path]:
    """All regular files under ``root``, sorted, not following links to folders (no loops)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in filenames if (Path(dirpath) / name).is_file())
    return sorted(found)


def _log_skipped(
    not_dicom: list[Path], unreadable: list[str], no_uids: list[Path], dicomdirs: list[Path],
    duplicates: list[tuple[Path, Path]],
) -> None:
    def first(items: Sequence[Any]) -> str:
        more = f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else ""
        return ", ".join(str(i) for i in items[:_LISTED]) + more

    if not_dicom:
        logger.warning("skipped %d file(s) that are not DICOM (no DICM preamble): %s", len(not_dicom), first(not_dicom))
    if unreadable:
        logger.warning("skipped %d file(s) whose DICOM header cannot be read: %s", len(unreadable), first(unreadable))
    if no_uids:
        logger.warning("skipped %d DICOM file(s) without Study/Series/SOP Instance UID: %s", len(no_uids),
                       first(no_uids))
    if dicomdirs:
        logger.info("ignored %d DICOMDIR file(s) (the folder is scanned directly): %s", len(dicomdirs),
                    first(dicomdirs))
    if duplicates:
        logger.warning("ignored %d duplicate instance(s) (same SOPInstanceUID as an earlier file): %s",
                       len(duplicates), first([f"{d} (duplicate of {o})" for d, o in duplicates]))


def _series(series_uid: str, instances: list[Instance]) -> Series:
    first = instances[0].header
    number = first.get("SeriesNumber")
    try:
        series_number = int(number) if number not in (None, "") else None
    except (TypeError, ValueError):
        series_number = None
    classes = {str(i.header.get("SOPClassUID", "")) for i in instances}
    if len(classes) > 1:
        logger.warning("series %s mixes SOP classes %s", series_uid, sorted(classes))
    return Series(
        series_instance_uid=series_uid,
        study_instance_uid=str(first.StudyInstanceUID),
        modality=str(first.get("Modality", "") or ""),
        sop_class_uid=str(first.get("SOPClassUID", "") or ""),
        description=str(first.get("SeriesDescription", "") or "").strip(),
        series_number=series_number,
        instances=tuple(instances),
    )


def _series_order(series: Series) -> tuple:
    return (series.series_number is None, series.series_number or 0, series.series_instance_uid)


# ----------------------------------------------------------------------------------------------- multi-frame
def _is_multiframe_functional(header: Dataset) -> bool:
    return "PerFrameFunctionalGroupsSequence" in header or "SharedFunctionalGroupsSequence" in header


def frame_headers(header: Dataset) -> list[Dataset]:
    """One header per frame of an enhanced (functional-group) instance, ``[frame 0, frame 1, ...]``.

    Each is the top-level header without the functional-group sequences, plus the frame's attributes from the
    shared then per-frame groups (per-frame wins): ImagePositionPatient, ImageOrientationPatient, PixelSpacing,
    SliceThickness, RescaleSlope/Intercept, RepetitionTime, EchoTime (from EffectiveEchoTime), InversionTime
    (first of InversionTimes). Where the classic attributes are absent it also sets ScanningSequence (from
    EchoPulseSequence, InversionRecovery, EchoPlanarPulseSequence) and ContrastBolusAgent (from
    ContrastBolusAgentSequence), so selection rules written for classic MR headers apply.
    """
    shared_seq = header.get("SharedFunctionalGroupsSequence") or []
    shared = shared_seq[0] if len(shared_seq) else Dataset()
    per_frame = header.get("PerFrameFunctionalGroupsSequence") or []
    count = int(header.get("NumberOfFrames", 0) or 0) or max(len(per_frame), 1)
    base = Dataset()
    for elem in header:
        if elem.keyword not in _SPLIT_AWAY:
            base.add(elem)
    out: list[Dataset] = []
    for f in range(count):
        ds = Dataset()
        for elem in base:
            ds.add(elem)
        ds.file_meta = getattr(header, "file_meta", None) or FileMetaDataset()
        for group in (shared, per_frame[f] if f < len(per_frame) else Dataset()):
            _copy_frame_group(group, ds)
        _classic_mr_attributes(ds)
        out.append(ds)
    return out


def _copy_frame_group(group: Dataset, ds: Dataset) -> None:
    for seq_keyword, keywords in _FRAME_GROUPS.items():
        item = _first_item(group, seq_keyword)
        if item is None:
            continue
        for keyword in keywords:
            if keyword in item:
                ds[keyword] = item[keyword]
    echo = _first_item(group, "MREchoSequence")
    if echo is not None and echo.get("EffectiveEchoTime") is not None:
        ds.EchoTime = round(float(echo.EffectiveEchoTime), 6)
    modifier = _first_item(group, "MRModifierSequence")
    if modifier is not None and modifier.get("InversionTimes"):
        times = modifier.InversionTimes
        ds.InversionTime = round(float(times[0] if isinstance(times, Sequence) else times), 6)


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq is not None and len(seq) else None


def _classic_mr_attributes(ds: Dataset) -> None:
    if "ScanningSequence" not in ds:
        codes = {"SPIN": ["SE"], "GRADIENT": ["GR"], "BOTH": ["SE", "GR"]}.get(str(ds.get("EchoPulseSequence", "")),
                                                                             [])
        if str(ds.get("InversionRecovery", "")).upper() == "YES":
            codes.append("IR")
        if str(ds.get("EchoPlanarPulseSequence", "")).upper() == "YES":
            codes.append("EP")
        if codes:
            ds.ScanningSequence = codes if len(codes) > 1 else codes[0]
    agent = _first_item(ds, "ContrastBolusAgentSequence")
    administered = str(ds.get("ContrastBolusAgentAdministered", "YES")).upper()
    if not ds.get("ContrastBolusAgent") and agent is not None and administered == "YES":
        ds.ContrastBolusAgent = str(agent.get("CodeMeaning", "") or "recorded")[:64]


# ----------------------------------------------------------------------------------------------- study choice
def choose_study(
    studies: Sequence[Study],
    *,
    channels: Sequence[str] | None = None,
    rules: Mapping[str, Any] | None = None,
) -> Study:
    """The one study to contour; studies are never mixed.

    Rule: all studies must belong to one patient (PatientID), else :class:`InputDataError` ("N different
    patients"; the IDs are not printed). One study is returned as is. Of several studies, the one study that is
    *usable* is returned: with ``channels`` and ``rules`` given, usable means every channel finds a series
    (:func:`operators.core.selection.select_series` would succeed); without them, it means the study holds at
    least one MR image series that passes the hard exclusions. No usable study, or more than one, raises
    :class:`InputDataError` listing each study by UID, number of series and modalities.
    """
    if not studies:
        raise InputDataError("the input holds no DICOM study")
    patients = {
        str(series.first.get("PatientID", "") or "") for study in studies for series in study.series
    }
    if len(patients) > 1:
        raise InputDataError(
            f"the input holds {len(studies)} studies of {len(patients)} different patients (by PatientID); "
            "give the studies of one patient only"
        )
    if len(studies) == 1:
        return studies[0]
    usable = [s for s in studies if _usable(s, channels, rules)]
    if len(usable) == 1:
        logger.info("input holds %d studies; using the only usable one, %s", len(studies),
                    usable[0].study_instance_uid)
        return usable[0]
    what = "no study is" if not usable else f"{len(usable)} studies are"
    listing = "\n".join(f"  - {_describe_study(s)}" for s in studies)
    raise InputDataError(
        f"the input holds {len(studies)} studies and {what} usable for the model "
        f"({'every channel finds a series' if channels and rules else 'holds an MR image series'}); "
        f"give one study only:\n{listing}"
    )


def _usable(study: Study, channels: Sequence[str] | None, rules: Mapping[str, Any] | None) -> bool:
    if channels and rules:
        try:
            assign_series(study, channels, rules)
        except SeriesSelectionError:
            return False
        return True
    return any(is_selectable(series) and series.modality.upper() == "MR" for series in study.series)


def _describe_study(study: Study) -> str:
    modalities = sorted({s.modality or "?" for s in study.series})
    return f"study {study.study_instance_uid}: {len(study.series)} series, modalities {'/'.join(modalities)}"
