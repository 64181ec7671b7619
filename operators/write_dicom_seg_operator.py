"""WriteDicomSegOperator: the contours as a binary DICOM-SEG referencing the reference series."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.steps.quality import seg_description
from operators.core.writers.seg import build_seg

SEG_FILE = "gtv_seg.dcm"


class WriteDicomSegOperator(GtvOperator):
    """Input ``IN_CONTOURS``. Output ``OUT_WRITTEN``: ``{"file": Path, "sop_instance_uid": str, ...}``."""

    IN_CONTOURS = "contours"
    OUT_WRITTEN = "seg_written"

    PARAMETERS: ClassVar[dict[str, object]] = {"output_folder": REQUIRED, "model": REQUIRED}
    output_folder: Path
    model: dict

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        with self.record.stage("seg"):
            ds = build_seg(list(contours.masks), contours.case.reference_headers,
                           structures=[structure(k) for k in contours.labels], model=self.model,
                           models=list(contours.models) or None,
                           series_description=seg_description(contours.quality))
            written = self.save_dicom(ds, self.output_folder / SEG_FILE, "seg")
        op_output.emit(written, self.OUT_WRITTEN)
