"""The one registry of structures this product contours.

Segment names, colours, SNOMED codes, RT ROI interpreted types and AAPM TG-263 names are defined here once and
used by training (label names in the model metadata), the DICOM-SEG writer, the RTSTRUCT writer and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from operators.core.errors import ModelSpecError


@dataclass(frozen=True)
class Structure:
    """One structure a model outputs.

    Attributes:
        key: identifier used in model metadata (``"GTV"``).
        tg263_name: ROIName / SegmentLabel, per AAPM TG-263.
        description: human-readable description (SegmentDescription, ROIDescription).
        rt_roi_interpreted_type: RTROIInterpretedType (3006,00A4).
        color_rgb: display colour, 0-255.
        category: SegmentedPropertyCategoryCodeSequence.
        type: SegmentedPropertyTypeCodeSequence.
        anatomic_region: AnatomicRegionSequence, or None.
    """

    key: str
    tg263_name: str
    description: str
    rt_roi_interpreted_type: str
    color_rgb: tuple[int, int, int]
    category: Code
    type: Code
    anatomic_region: Code | None


STRUCTURES: dict[str, Structure] = {
    "GTV": Structure(
        key="GTV",
        tg263_name="GTV",
        description="Gross tumour volume, glioblastoma (enhancing tumour and necrosis), automatic",
        rt_roi_interpreted_type="GTV",
        color_rgb=(255, 0, 0),
        category=codes.SCT.MorphologicallyAbnormalStructure,
        type=codes.SCT.Neoplasm,
        anatomic_region=codes.SCT.Brain,
    ),
    "EnhancingTumour": Structure(
        key="EnhancingTumour",
        tg263_name="GTV_Enhancing",
        description="Contrast-enhancing tumour (BraTS enhancing tumour), automatic",
        rt_roi_interpreted_type="GTV",
        color_rgb=(255, 140, 0),
        category=codes.SCT.MorphologicallyAbnormalStructure,
        type=codes.SCT.Neoplasm,
        anatomic_region=codes.SCT.Brain,
    ),
    "Brain": Structure(
        key="Brain",
        tg263_name="Brain",
        description="Brain, automatic brain extraction",
        rt_roi_interpreted_type="ORGAN",
        color_rgb=(0, 160, 255),
        category=codes.SCT.Organ,
        type=codes.SCT.Brain,
        anatomic_region=None,
    ),
    "Hippocampus": Structure(
        key="Hippocampus",
        tg263_name="Hippocampus",
        description="Hippocampus, left and right (source task of transfer learning)",
        rt_roi_interpreted_type="AVOIDANCE",
        color_rgb=(255, 200, 0),
        category=codes.SCT.AnatomicalStructure,
        type=codes.SCT.Hippocampus,
        anatomic_region=None,
    ),
}


def structure(key: str) -> Structure:
    """The registered structure for a model label name; ModelSpecError if it is unknown."""
    try:
        return STRUCTURES[key]
    except KeyError:
        raise ModelSpecError(
            f"label name {key!r} is not in the structure registry (operators/core/labels.py); "
            f"known: {sorted(STRUCTURES)}"
        ) from None
