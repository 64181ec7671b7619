"""WriteRTStructOperator: the contours as an RT Structure Set a treatment planning system imports."""

from __future__ import annotations

from pathlib import Path

from monai.deploy.core import Fragment, OperatorSpec

from operators.base import GtvOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.record import RunRecord
from operators.core.steps.quality import verdict_fields
from operators.core.writers.rtstruct import build_rtstruct

RTSTRUCT_FILE = "gtv_rtstruct.dcm"


class WriteRTStructOperator(GtvOperator):
    """Input ``IN_CONTOURS``. Output ``OUT_WRITTEN``: ``{"file": Path, "sop_instance_uid": str, ...}``."""

    IN_CONTOURS = "contours"
    OUT_WRITTEN = "rtstruct_written"

    def __init__(self, fragment: Fragment, *args, output_folder: Path, model: dict, record: RunRecord,
                 **kwargs) -> None:
        self.output_folder, self.model, self.record = Path(output_folder), model, record
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.IN_CONTOURS)
        spec.output(self.OUT_WRITTEN)

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        with self.record.stage("rtstruct"):
            models = contours.models or (self.model,) * len(contours.masks)
            extra = [(m, structure(k), mdl) for m, k, mdl in zip(contours.masks[1:], contours.labels[1:], models[1:])]
            ds = build_rtstruct(contours.masks[0], contours.case.reference_headers,
                                structure=structure(contours.labels[0]), model=self.model, extra_rois=extra,
                                **verdict_fields(contours.quality))
            path = self.output_folder / RTSTRUCT_FILE
            ds.save_as(path, enforce_file_format=True)
        written = {"file": path.name, "sop_instance_uid": ds.SOPInstanceUID,
                   "series_instance_uid": ds.SeriesInstanceUID}
        self.record.decisions["rtstruct"] = written
        op_output.emit(written, self.OUT_WRITTEN)
