"""WriteReportOperator: the review picture and the JSON report, after both DICOM writers have finished."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import Contours
from operators.core.writers.report import render_review, report_dict, review_title, write_json

PNG_FILE = "gtv_review.png"
JSON_FILE = "gtv_report.json"


class WriteReportOperator(GtvOperator):
    """Inputs ``IN_CONTOURS``, ``IN_SEG``, ``IN_RTSTRUCT`` (the writers' results). No output."""

    IN_CONTOURS = "contours"
    IN_SEG = "seg_written"
    IN_RTSTRUCT = "rtstruct_written"

    PARAMETERS: ClassVar[dict[str, object]] = {"output_folder": REQUIRED, "model": REQUIRED, "channels": (),
                                               "validation": None, "configuration": None}
    output_folder: Path
    model: dict
    channels: tuple[str, ...]
    validation: dict | None
    configuration: dict | None  # the channel-configuration decision (operators.core.selection.configuration)

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        op_input.receive(self.IN_SEG)
        op_input.receive(self.IN_RTSTRUCT)
        with self.record.stage("report"):
            title = review_title(contours, model=self.model, channels=self.channels, validation=self.validation)
            slices = render_review(self.output_folder / PNG_FILE, contours, title)
        write_json(self.output_folder / JSON_FILE, report_dict(
            contours, model=self.model, channels=self.channels, validation=self.validation,
            configuration=self.configuration, record=self.record, picture=PNG_FILE, slices_shown=slices))
