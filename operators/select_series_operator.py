"""SelectSeriesOperator: choose one series per model channel by the rules file and the documented score."""

from __future__ import annotations

from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.selection.series import select_series


class SelectSeriesOperator(GtvOperator):
    """Input ``IN_STUDY``: Study. Output ``OUT_SELECTION``: ``list[SelectedSeries]`` in channel order."""

    IN_STUDY = "study"
    OUT_SELECTION = "selection"

    PARAMETERS: ClassVar[dict[str, object]] = {"channels": REQUIRED, "rules": REQUIRED}
    channels: tuple[str, ...]
    rules: dict

    def run(self, op_input, op_output) -> None:
        study = op_input.receive(self.IN_STUDY)
        with self.record.stage("select"):
            selected = select_series(study, self.channels, self.rules)
        self.record.decisions["series"] = [
            {
                "channel": s.channel,
                "series_instance_uid": s.series.series_instance_uid,
                "series_number": s.series.series_number,
                "series_description": s.series.description,
                "instances": len(s.series.instances),
                "score": s.score,
                "reason": s.reason,
                "candidates": [list(c) for c in s.candidates],
            }
            for s in selected
        ]
        op_output.emit(selected, self.OUT_SELECTION)
