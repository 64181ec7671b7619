"""DICOM Segmentation (binary) of the contoured structures, referencing the reference series (highdicom)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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
) -> Dataset:
    """Build a binary DICOM-SEG with one segment per structure.

    Args:
        masks: one ``(Z, Y, X)`` bool volume per structure, on the reference series' grid (``array[k]`` is the
            image whose header is ``reference[k]``).
        reference: headers of the reference series, in the masks' slice order (pixel data not needed).
        structures: registry entries, same order as ``masks``.
        model: ``{"name", "version", "sha256"}`` of the model that produced the masks.

    Returns:
        The Segmentation dataset (Explicit VR Little Endian), frames for every reference slice (empty frames
        omitted by highdicom), ``SegmentsOverlap`` NO for a single structure.
    """
    if len(masks) != len(structures):
        raise ValueError(f"{len(masks)} masks but {len(structures)} structures")
    algorithm = algorithm_identification(model)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=s.tg263_name,
            segmented_property_category=s.category,
            segmented_property_type=s.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[s.anatomic_region] if s.anatomic_region is not None else None,
        )
        for n, s in enumerate(structures, start=1)
    ]
    # (frames, rows, cols, segments)
    pixels = np.stack([m.array.astype(bool) for m in masks], axis=-1)
    with warnings.catch_warnings():
        # highdicom warns about single-component PatientName values by quoting them: patient data must not reach
        # the logs, and the name is copied as the source images hold it, so that warning is not shown.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = _segmentation(reference, pixels, descriptions, model, series_number, series_description)
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
