"""DICOM Segmentation (binary) of the contoured structures, referencing the reference series (highdicom).

The reference series is either single-frame instances (one per slice) or the frames of one multi-frame (enhanced)
instance, whose per-frame headers (:func:`operators.core.dicom.multiframe.frame_headers`) carry their frame number in
ReferencedFrameNumber (0008,1160). highdicom references the frames of a multi-frame source through its functional
groups, so for such a series :func:`build_seg` gives highdicom one source header rebuilt from the per-frame headers:
PlaneOrientation and PixelMeasures shared (``series_to_volume`` has checked that they agree), PlanePosition per frame,
frames in frame-number order, and the mask frames reordered to match. A series spread over several multi-frame
instances cannot be referenced by one highdicom Segmentation: refused with :class:`InputDataError`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom import Dataset, config
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from operators.core.dicom.values import conformant_headers
from operators.core.errors import InputDataError
from operators.core.geometry import Volume
from operators.core.labels import Structure
from operators.core.product import MANUFACTURER, PRODUCT_NAME, SEG_SERIES_NUMBER, SOFTWARE_VERSION, UID_PREFIX

logger = logging.getLogger(__name__)


def algorithm_identification(model: dict) -> hd.AlgorithmIdentificationSequence:
    """AlgorithmIdentificationSequence naming the model, its version and its TorchScript sha256."""
    return hd.AlgorithmIdentificationSequence(
        name=str(model["name"])[:64],
        family=codes.cid7162.ArtificialIntelligence,
        version=str(model["version"])[:64],
        source=MANUFACTURER[:64],
        parameters={"sha256": str(model["sha256"])},
    )


def build_seg(
    masks: Sequence[Volume],
    reference: Sequence[Dataset],
    *,
    structures: Sequence[Structure],
    model: dict,
    series_number: int = SEG_SERIES_NUMBER,
    series_description: str = "GTV auto-segmentation (UNAPPROVED)",
    models: Sequence[dict] | None = None,
) -> Dataset:
    """Build a binary DICOM-SEG with one segment per structure.

    Args:
        masks: one ``(Z, Y, X)`` bool volume per structure, on the reference series' grid (``array[k]`` is the
            image whose header is ``reference[k]``).
        reference: headers of the reference series, in the masks' slice order (pixel data not needed).
        structures: registry entries, same order as ``masks``.
        model: ``{"name", "version", "sha256"}`` of the model that produced the masks (the GTV model: it names the
            SEG's content and software versions).
        models: one such dict per structure when the structures come from different models (the GTV model and the
            brain-extraction model); each segment's AlgorithmIdentificationSequence names its own. Default: ``model``.

    Returns:
        The Segmentation dataset (Explicit VR Little Endian), frames for every reference slice (empty frames
        omitted by highdicom), ``SegmentsOverlap`` NO for a single structure.
    """
    if len(masks) != len(structures):
        raise ValueError(f"{len(masks)} masks but {len(structures)} structures")
    models = list(models) if models is not None else [model] * len(structures)
    if len(models) != len(structures):
        raise ValueError(f"{len(models)} model identities but {len(structures)} structures")
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=s.tg263_name,
            segmented_property_category=s.category,
            segmented_property_type=s.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm_identification(m),
            anatomic_regions=[s.anatomic_region] if s.anatomic_region is not None else None,
        )
        for n, (s, m) in enumerate(zip(structures, models), start=1)
    ]
    # (frames, rows, cols, segments)
    pixels = np.stack([m.array.astype(bool) for m in masks], axis=-1)
    sources, pixels = source_images(reference, pixels)
    sources = conformant_headers(sources, where="DICOM-SEG")
    with warnings.catch_warnings(), config.disable_value_validation():
        # highdicom warns about single-component PatientName values by quoting them, and pydicom quotes values that
        # do not match their VR when highdicom copies them: patient data must not reach the logs, and the values are
        # copied as the source images hold them, so neither is shown.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = _segmentation(sources, pixels, descriptions, model, series_number, series_description)
    logger.info("DICOM-SEG: %d segment(s), %d frames, SOPInstanceUID %s", len(structures), seg.NumberOfFrames,
                seg.SOPInstanceUID)
    return seg


def _segmentation(reference, pixels, descriptions, model, series_number, series_description) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=list(reference),
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(prefix=UID_PREFIX),
        series_number=series_number,
        sop_instance_uid=generate_uid(prefix=UID_PREFIX),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=PRODUCT_NAME[:64],
        software_versions=[SOFTWARE_VERSION, f"{model['name']} {model['version']}"[:64]],
        device_serial_number="0",
        series_description=series_description[:64],
        content_label="GTV",
        content_description=f"{model['name']} {model['version']} sha256 {model['sha256']}"[:64],
        content_creator_name=None,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        omit_empty_frames=False,
    )


def source_images(reference: Sequence[Dataset], pixels: np.ndarray) -> tuple[list[Dataset], np.ndarray]:
    """The source images to give highdicom, and ``pixels`` (``(Z, ...)``, slice order) in their frame order.

    Single-frame references are returned as they are. Per-frame headers of one multi-frame instance become one
    rebuilt multi-frame header (see the module docstring) and ``pixels`` is reordered by frame number.

    Raises:
        InputDataError: the reference repeats an image, spans several multi-frame instances, mixes them with
            single-frame images, or does not hold every frame of its instance (frame numbers 1..NumberOfFrames).
    """
    frames = [h.get("ReferencedFrameNumber") for h in reference]
    uids = [str(h.SOPInstanceUID) for h in reference]
    series = str(reference[0].get("SeriesInstanceUID", ""))
    if all(f in (None, "") for f in frames):
        if len(set(uids)) != len(uids):
            raise InputDataError(
                f"DICOM-SEG: reference series {series} repeats a SOPInstanceUID (0008,0018) without "
                "ReferencedFrameNumber (0008,1160); expected one image per slice"
            )
        return list(reference), pixels
    if any(f in (None, "") for f in frames) or len(set(uids)) != 1:
        raise InputDataError(
            f"DICOM-SEG: reference series {series} spreads its slices over {len(set(uids))} SOP instances, some of "
            "them multi-frame (ReferencedFrameNumber (0008,1160)); a segmentation can reference the frames of one "
            "multi-frame instance, or single-frame images, not a mix"
        )
    numbers = [int(f) for f in frames]
    count = int(reference[0].get("NumberOfFrames", 0) or 0)
    if sorted(numbers) != list(range(1, count + 1)):
        raise InputDataError(
            f"DICOM-SEG: reference series {series}: instance {uids[0]} has NumberOfFrames (0028,0008) {count}, but "
            f"the volume holds frames {sorted(numbers)}; expected every frame 1..{count}"
        )
    order = np.argsort(numbers)  # order[f - 1] = slice holding frame f
    return [_multiframe_source([reference[k] for k in order])], pixels[order]


# Per-frame attributes of a flattened frame header that the rebuilt multi-frame source keeps in functional groups.
_FRAME_KEYWORDS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                   "SpacingBetweenSlices", "ReferencedFrameNumber")


def _multiframe_source(frames: Sequence[Dataset]) -> Dataset:
    """One multi-frame header for highdicom from per-frame headers in frame order (frame 1 first)."""
    first = frames[0]
    source = Dataset()
    for elem in first:
        if elem.keyword not in _FRAME_KEYWORDS:
            source.add(elem)
    if hasattr(first, "file_meta"):
        source.file_meta = first.file_meta
    orientation = Dataset()
    orientation.ImageOrientationPatient = first.ImageOrientationPatient
    measures = Dataset()
    measures.PixelSpacing = first.PixelSpacing
    for keyword in ("SliceThickness", "SpacingBetweenSlices"):
        if first.get(keyword) not in (None, ""):
            setattr(measures, keyword, first.get(keyword))
    shared = Dataset()
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    per_frame = []
    for header in frames:
        position = Dataset()
        position.ImagePositionPatient = header.ImagePositionPatient
        item = Dataset()
        item.PlanePositionSequence = DicomSequence([position])
        per_frame.append(item)
    source.NumberOfFrames = len(frames)
    source.SharedFunctionalGroupsSequence = DicomSequence([shared])
    source.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    return source
