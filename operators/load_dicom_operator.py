"""LoadDicomOperator: scan the input folder and emit the one study to contour."""

from __future__ import annotations

from pathlib import Path

from monai.deploy.core import Fragment, OperatorSpec

from operators.base import GtvOperator
from operators.core.dicom.folder import choose_study, scan_folder
from operators.core.dicom.series import Study
from operators.core.record import RunRecord


class LoadDicomOperator(GtvOperator):
    """No input. Output ``OUT_STUDY``: :class:`operators.core.dicom.series.Study` (headers only)."""

    OUT_STUDY = "study"

    def __init__(self, fragment: Fragment, *args, input_folder: Path, channels: tuple[str, ...], rules: dict,
                 record: RunRecord, study: Study | None = None, **kwargs) -> None:
        self.input_folder, self.channels, self.rules = Path(input_folder), tuple(channels), rules
        self.study = study  # scanned before the graph (to choose the channel configuration): not scanned again
        self.record = record
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.output(self.OUT_STUDY)

    def run(self, op_input, op_output) -> None:
        study = self.study
        if study is None:
            with self.record.stage("load"):
                study = choose_study(scan_folder(self.input_folder), channels=self.channels, rules=self.rules)
        self.record.decisions["study_series_count"] = len(study.series)
        op_output.emit(study, self.OUT_STUDY)
