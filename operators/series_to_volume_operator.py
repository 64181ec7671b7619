"""SeriesToVolumeOperator: read the selected series' pixels into volumes with exact patient geometry."""

from __future__ import annotations

from operators.base import GtvOperator
from operators.core.case import ChannelVolumes
from operators.core.dicom.volume import series_to_volume


class SeriesToVolumeOperator(GtvOperator):
    """Input ``IN_SELECTION``: ``list[SelectedSeries]``. Output ``OUT_VOLUMES``: :class:`ChannelVolumes`."""

    IN_SELECTION = "selection"
    OUT_VOLUMES = "volumes"

    def run(self, op_input, op_output) -> None:
        selected = op_input.receive(self.IN_SELECTION)
        with self.record.stage("to_volume"):
            built = [series_to_volume(s.series) for s in selected]
        case = ChannelVolumes(
            channels=tuple(s.channel for s in selected),
            volumes=tuple(v for v, _ in built),
            reference_headers=built[0][1],
            selections=tuple(selected),
        )
        self.record.decisions["reference_grid"] = case.reference.grid.describe()
        op_output.emit(case, self.OUT_VOLUMES)
