"""ResampleOperator: every channel onto the reference grid, then onto the model grid, normalised."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import ChannelVolumes, ModelInput
from operators.core.model.schema import Preprocessing
from operators.core.steps.preprocess import align_to_reference, to_model_input


class ResampleOperator(GtvOperator):
    """Input ``IN_VOLUMES``: :class:`ChannelVolumes`. Output ``OUT_MODEL_INPUT``: :class:`ModelInput`."""

    IN_VOLUMES = "volumes"
    OUT_MODEL_INPUT = "model_input"

    PARAMETERS: ClassVar[dict[str, object]] = {"preprocessing": REQUIRED}
    preprocessing: Preprocessing

    def run(self, op_input, op_output) -> None:
        case: ChannelVolumes = op_input.receive(self.IN_VOLUMES)
        with self.record.stage("resample"):
            aligned = align_to_reference(case.volumes, case.channels)
            tissue = case.brain_mask.tissue if case.brain_mask is not None else None
            image, grid = to_model_input(aligned, self.preprocessing, names=case.channels, brain_mask=tissue)
        self.record.decisions["model_grid"] = grid.describe()
        aligned_case = dataclasses.replace(case, volumes=tuple(aligned))
        op_output.emit(ModelInput(image=image, grid=grid, case=aligned_case, brain_mask=case.brain_mask),
                       self.OUT_MODEL_INPUT)
