"""WriteDicomSegOperator: the contours as a binary DICOM-SEG referencing the reference series."""

from __future__ import annotations

from operators.base import DicomWriterOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.steps.quality import seg_description
from operators.core.writers.seg import build_seg

SEG_FILE = "gtv_seg.dcm"


class WriteDicomSegOperator(DicomWriterOperator):
    """One segment per structure (GTV first), the quality verdict in its SeriesDescription."""

    OUT_WRITTEN = "seg_written"
    FILE, STAGE = SEG_FILE, "seg"

    def build(self, contours: Contours):
        return build_seg(list(contours.masks), contours.case.reference_headers,
                         structures=[structure(k) for k in contours.labels], model=self.model,
                         models=list(contours.models) or None, series_description=seg_description(contours.quality))
