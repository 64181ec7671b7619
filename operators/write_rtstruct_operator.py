"""WriteRTStructOperator: the contours as an RT Structure Set a treatment planning system imports."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.steps.quality import verdict_fields
from operators.core.writers.rtstruct import build_rtstruct

RTSTRUCT_FILE = "gtv_rtstruct.dcm"


class WriteRTStructOperator(GtvOperator):
    """Input ``IN_CONTOURS``. Output ``OUT_WRITTEN``: ``{"file": Path, "sop_instance_uid": str, ...}``."""

    IN_CONTOURS = "contours"
    OUT_WRITTEN = "rtstruct_written"

    PARAMETERS: ClassVar[dict[str, object]] = {"output_folder": REQUIRED, "model": REQUIRED}
    output_folder: Path
    model: dict

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        with self.record.stage("rtstruct"):
            models = contours.models or (self.model,) * len(contours.masks)
            extra = [(m, structure(k), mdl) for m, k, mdl in zip(contours.masks[1:], contours.labels[1:], models[1:])]
            ds = build_rtstruct(contours.masks[0], contours.case.reference_headers,
                                structure=structure(contours.labels[0]), model=self.model, extra_rois=extra,
                                **verdict_fields(contours.quality))
            written = self.save_dicom(ds, self.output_folder / RTSTRUCT_FILE, "rtstruct")
        op_output.emit(written, self.OUT_WRITTEN)
