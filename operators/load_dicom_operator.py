"""LoadDicomOperator: scan the input folder and emit the one study to contour."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.dicom.folder import scan_folder
from operators.core.dicom.series import Study
from operators.core.selection.study import choose_study


class LoadDicomOperator(GtvOperator):
    """No input. Output ``OUT_STUDY``: :class:`operators.core.dicom.series.Study` (headers only)."""

    OUT_STUDY = "study"

    # study: scanned before the graph (to choose the channel configuration), then not scanned again
    PARAMETERS: ClassVar[dict[str, object]] = {"input_folder": REQUIRED, "channels": REQUIRED, "rules": REQUIRED,
                                               "study": None}
    input_folder: Path
    channels: tuple[str, ...]
    rules: dict
    study: Study | None

    def run(self, op_input, op_output) -> None:
        study = self.study
        if study is None:
            with self.record.stage("load"):
                study = choose_study(scan_folder(self.input_folder), channels=self.channels, rules=self.rules)
        self.record.decisions["study_series_count"] = len(study.series)
        op_output.emit(study, self.OUT_STUDY)
