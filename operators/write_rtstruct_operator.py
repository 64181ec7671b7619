"""WriteRTStructOperator: the contours as an RT Structure Set a treatment planning system imports."""

from __future__ import annotations

from operators.base import DicomWriterOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.steps.quality import verdict_fields
from operators.core.writers.rtstruct import build_rtstruct

RTSTRUCT_FILE = "gtv_rtstruct.dcm"


class WriteRTStructOperator(DicomWriterOperator):
    """The GTV ROI first, then the organs at risk; the quality verdict in StructureSetLabel and the descriptions."""

    OUT_WRITTEN = "rtstruct_written"
    FILE, STAGE = RTSTRUCT_FILE, "rtstruct"

    def build(self, contours: Contours):
        models = contours.models or (self.model,) * len(contours.masks)
        extra = [(m, structure(k), mdl) for m, k, mdl in zip(contours.masks[1:], contours.labels[1:], models[1:])]
        return build_rtstruct(contours.masks[0], contours.case.reference_headers,
                              structure=structure(contours.labels[0]), model=self.model, extra_rois=extra,
                              **verdict_fields(contours.quality))
