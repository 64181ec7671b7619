"""Find the DICOM studies in an input folder.

:func:`scan_folder` reads headers only (``stop_before_pixels=True``) from every file under a folder, whatever the
layout and file names, and groups them by StudyInstanceUID then SeriesInstanceUID. Enhanced (multi-frame) MR
instances are split into one :class:`Instance` per frame, whose header carries that frame's geometry, so that the
rest of the pipeline sees single-frame slices; each such header records its frame number (1-based) in
ReferencedFrameNumber (0008,1160), which the SEG and RTSTRUCT writers use to reference the frame.
The splitting is :mod:`operators.core.dicom.multiframe`; the choice of one study among several is
:func:`operators.core.selection.study.choose_study`. Logs and messages name files by path relative to the input folder
and studies by UID; they never carry patient names, IDs, birth dates or accession numbers.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID

from operators.core.dicom.multiframe import frame_headers, is_multiframe
from operators.core.dicom.series import Instance, Series, Study
from operators.core.errors import InputDataError
from operators.core.selection.series import MR_IMAGE_SOP_CLASSES

logger = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_LISTED = 3  # how many example paths a summary log line names

# Header read failures on files that do start like DICOM (truncated or malformed headers).
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, NotImplementedError,
                struct.error, zlib.error, BytesLengthException)

_UID_TAGS = (
    ("StudyInstanceUID", "(0020,000D)"), ("SeriesInstanceUID", "(0020,000E)"), ("SOPInstanceUID", "(0008,0018)"),
)


def scan_folder(root: Path) -> list[Study]:
    """Read every DICOM header under ``root`` and group the instances into studies and series.

    Rules, in the order applied to each file:

    * Files without the ``DICM`` preamble are not DICOM: skipped, with one summary warning.
    * DICOMDIR files are ignored (the folder itself is scanned, so every file they list is found anyway).
    * A *damaged* file (``DICM`` preamble, but its header cannot be parsed, lacks StudyInstanceUID,
      SeriesInstanceUID or SOPInstanceUID, or, for an MR image, ends before PixelData (7FE0,0010): a truncated file
      whose last value pydicom reads cut short) makes the input unusable when its SOP class (from the header, else from
      MediaStorageSOPClassUID (0002,0002) of the file meta) is an MR image storage class or cannot be read: it may be a
      slice of a series to contour, and a series with a slice silently left out would give a wrong contour. A damaged
      file of any other SOP class (SR, presentation state, RTSTRUCT, ...) is skipped with a warning.
    * An instance seen twice (same SOPInstanceUID) is kept once (the first in path order), with a warning; copies
      that disagree on StudyInstanceUID or SeriesInstanceUID make the input unusable.

    Returns:
        Studies in the order their first file is found (paths sorted); each study's series sorted by SeriesNumber.
        Instances are in path order, not slice order.

    Raises:
        InputDataError: ``root`` is not a folder, is empty, holds no usable DICOM instance, holds a damaged MR image
            file, or holds conflicting copies of one instance. Messages name files relative to ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"input folder {root} does not exist or is not a folder")
    files = _list_files(root)
    if not files:
        raise InputDataError(f"input folder {root} is empty: no files found (subfolders included)")

    not_dicom: list[Path] = []
    damaged_fatal: list[str] = []
    damaged_skipped: list[str] = []
    dicomdirs: list[Path] = []
    duplicates: list[tuple[Path, Path]] = []
    seen: dict[str, tuple[Path, Dataset]] = {}
    grouped: dict[str, dict[str, list[Instance]]] = {}
    for path in files:
        rel = path.relative_to(root)
        try:
            header, ends_at_pixels = _read_header(path)
        except InvalidDicomError:
            not_dicom.append(rel)
            continue
        except _READ_ERRORS as exc:
            sop_class = _meta_sop_class(path)
            fault = f"{rel}: header cannot be read ({type(exc).__name__}: {exc}); SOP class {_class_name(sop_class)}"
            (damaged_fatal if _may_be_mr_image(sop_class) else damaged_skipped).append(fault)
            continue
        meta_class = str(getattr(header, "file_meta", Dataset()).get("MediaStorageSOPClassUID", ""))
        if meta_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in header:
            dicomdirs.append(rel)
            continue
        missing = [f"{kw} {tag}" for kw, tag in _UID_TAGS if not str(header.get(kw, "") or "")]
        if missing:
            sop_class = str(header.get("SOPClassUID", "") or "") or meta_class or _meta_sop_class(path)
            fault = f"{rel}: {', '.join(missing)} missing or empty; SOP class {_class_name(sop_class)}"
            (damaged_fatal if _may_be_mr_image(sop_class) else damaged_skipped).append(fault)
            continue
        if ends_at_pixels is False and str(header.get("SOPClassUID", "")) in MR_IMAGE_SOP_CLASSES:
            damaged_fatal.append(
                f"{rel}: the header ends without PixelData (7FE0,0010) (truncated file); SOP class "
                f"{_class_name(str(header.SOPClassUID))}"
            )
            continue
        sop_uid, study_uid, series_uid = str(header.SOPInstanceUID), str(header.StudyInstanceUID), \
            str(header.SeriesInstanceUID)
        if sop_uid in seen:
            _check_duplicate(rel, header, *seen[sop_uid])
            duplicates.append((rel, seen[sop_uid][0]))
            continue
        seen[sop_uid] = (rel, header)
        bucket = grouped.setdefault(study_uid, {}).setdefault(series_uid, [])
        if is_multiframe(header):
            bucket.extend(Instance(path=path, header=h, frame=f) for f, h in enumerate(frame_headers(header)))
        else:
            bucket.append(Instance(path=path, header=header))

    if damaged_fatal:
        raise InputDataError(
            f"input folder {root} holds {len(damaged_fatal)} damaged DICOM file(s) that may be MR slices of a series "
            f"to contour (truncated or corrupt header, or StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID missing): "
            f"{_first(damaged_fatal)}; remove or replace them (a series missing a slice would give a wrong contour)"
        )
    _log_skipped(not_dicom, damaged_skipped, dicomdirs, duplicates)
    if not grouped:
        raise InputDataError(
            f"input folder {root} holds no usable DICOM instance: {len(files)} file(s), {len(not_dicom)} not DICOM, "
            f"{len(damaged_skipped)} damaged, {len(dicomdirs)} DICOMDIR"
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


def _read_header(path: Path) -> tuple[Dataset, bool | None]:
    """The header of ``path`` (no pixel data), and whether the file goes on with the PixelData (7FE0,0010) element.

    pydicom reads a value cut short by the end of the file without complaint, so a truncated header can parse into
    a plausible but incomplete data set (a SeriesInstanceUID cut to ``1.2.``); an image file whose header is not
    followed by its pixel data is such a file. None when this cannot be told (deflated transfer syntax, whose
    truncation the inflater reports).
    """
    with open(path, "rb") as fp:
        header = pydicom.dcmread(fp, stop_before_pixels=True, force=False)
        # pydicom converts values when first used: convert them all now, so a malformed value fails here, as a
        # damaged file, rather than wherever the pipeline first reads it.
        header.file_meta.walk(_touch)
        header.walk(_touch)
        syntax = header.file_meta.get("TransferSyntaxUID")
        if syntax is not None and not isinstance(syntax, UID):
            raise ValueError(f"TransferSyntaxUID (0002,0010) holds {len(syntax)} values, expected one UID")
        if syntax is not None and syntax.is_deflated:
            return header, None
        tag = fp.read(4)
    big_endian = syntax is not None and not syntax.is_little_endian
    return header, tag == (b"\x7f\xe0\x00\x10" if big_endian else b"\xe0\x7f\x10\x00")


def _touch(ds: Dataset, elem: Any) -> None:
    """A :meth:`Dataset.walk` callback that does nothing: walking converts every element's raw value."""


def _meta_sop_class(path: Path) -> str:
    """MediaStorageSOPClassUID (0002,0002) of a file whose data set cannot be read; '' when that fails too."""
    try:
        return str(read_file_meta_info(path).get("MediaStorageSOPClassUID", "") or "")
    except (InvalidDicomError, *_READ_ERRORS):
        return ""


def _may_be_mr_image(sop_class: str) -> bool:
    return not sop_class or sop_class in MR_IMAGE_SOP_CLASSES


def _class_name(uid: str) -> str:
    if not uid:
        return "unknown"
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else uid


def _check_duplicate(rel: Path, header: Dataset, first_rel: Path, first: Dataset) -> None:
    """Two files with one SOPInstanceUID must agree on study and series (else the input contradicts itself)."""
    for keyword, tag in _UID_TAGS[:2]:
        a, b = str(first.get(keyword, "")), str(header.get(keyword, ""))
        if a != b:
            raise InputDataError(
                f"files {first_rel} and {rel} hold the same SOPInstanceUID (0008,0018) {header.SOPInstanceUID} but "
                f"different {keyword} {tag}: {a} and {b}; one instance cannot belong to two series"
            )


def _first(items: Sequence[Any]) -> str:
    more = f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else ""
    return ", ".join(str(i) for i in items[:_LISTED]) + more


def _list_files(root: Path) -> list[Path]:
    """All regular files under ``root``, sorted, not following links to folders (no loops)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in filenames if (Path(dirpath) / name).is_file())
    return sorted(found)


def _log_skipped(
    not_dicom: list[Path], damaged: list[str], dicomdirs: list[Path], duplicates: list[tuple[Path, Path]],
) -> None:
    if not_dicom:
        logger.warning("skipped %d file(s) that are not DICOM (no DICM preamble): %s", len(not_dicom),
                       _first(not_dicom))
    if damaged:
        logger.warning("skipped %d damaged DICOM file(s) that are not MR images: %s", len(damaged), _first(damaged))
    if dicomdirs:
        logger.info("ignored %d DICOMDIR file(s) (the folder is scanned directly): %s", len(dicomdirs),
                    _first(dicomdirs))
    if duplicates:
        logger.warning("ignored %d duplicate instance(s) (same SOPInstanceUID as an earlier file): %s",
                       len(duplicates), _first([f"{d} (duplicate of {o})" for d, o in duplicates]))


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
