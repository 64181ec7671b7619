"""WriteDicomSegOperator: the contours as a binary DICOM-SEG referencing the reference series."""

from __future__ import annotations

from pathlib import Path

from monai.deploy.core import Fragment, OperatorSpec

from operators.base import GtvOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.record import RunRecord
from operators.core.steps.quality import seg_description
from operators.core.writers.seg import build_seg

SEG_FILE = "gtv_seg.dcm"


class WriteDicomSegOperator(GtvOperator):
    """Input ``IN_CONTOURS``. Output ``OUT_WRITTEN``: ``{"file": Path, "sop_instance_uid": str, ...}``."""

    IN_CONTOURS = "contours"
    OUT_WRITTEN = "seg_written"

    def __init__(self, fragment: Fragment, *args, output_folder: Path, model: dict, record: RunRecord,
                 **kwargs) -> None:
        self.output_folder, self.model, self.record = Path(output_folder), model, record
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.IN_CONTOURS)
        spec.output(self.OUT_WRITTEN)

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        with self.record.stage("seg"):
            ds = build_seg(list(contours.masks), contours.case.reference_headers,
                           structures=[structure(k) for k in contours.labels], model=self.model,
                           models=list(contours.models) or None,
                           series_description=seg_description(contours.quality))
            path = self.output_folder / SEG_FILE
            ds.save_as(path, enforce_file_format=True)
        written = {"file": path.name, "sop_instance_uid": ds.SOPInstanceUID,
                   "series_instance_uid": ds.SeriesInstanceUID}
        self.record.decisions["seg"] = written
        op_output.emit(written, self.OUT_WRITTEN)
