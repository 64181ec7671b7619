"""BrainExtractionOperator: the brain mask of the reference series, with the brain-extraction model."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import ChannelVolumes
from operators.core.model.predictor import Predictor
from operators.core.model.spec import ModelSpec
from operators.core.steps.brain import extract_brain

#: Plausible brain-mask volumes (cm3) for a whole adult brain in the field of view (the margin not included).
BRAIN_CM3 = (700, 2500)


class BrainExtractionOperator(GtvOperator):
    """Input ``IN_VOLUMES``: :class:`ChannelVolumes`. Output ``OUT_VOLUMES``: the same with ``brain_mask`` set
    (:class:`operators.core.steps.brain.BrainMask`: tissue for normalisation, region with margin for the output)."""

    IN_VOLUMES = "volumes"
    OUT_VOLUMES = "brain_volumes"

    PARAMETERS: ClassVar[dict[str, object]] = {"model": REQUIRED, "predictor": REQUIRED}
    model: ModelSpec
    predictor: Predictor

    def run(self, op_input, op_output) -> None:
        case: ChannelVolumes = op_input.receive(self.IN_VOLUMES)
        with self.record.stage("brain_extraction"):
            brain = extract_brain(case.reference, self.model, self.predictor)
        volume_cm3, region_cm3 = brain.cm3()
        self.record.decisions["brain_volume_cm3"] = round(volume_cm3, 1)
        self.record.decisions["brain_region_cm3"] = round(region_cm3, 1)
        self.record.decisions["brain_margin_mm"] = self.model.postprocessing.dilate_mm
        self.record.decisions["brain_model"] = self.model.identity()
        self.record.decisions["brain_source"] = ("the series' own non-zero region (the input came skull-stripped)"
                                                 if brain.skull_stripped else "the brain model")
        # adult intracranial volume is about 1100-1800 cm3
        if not BRAIN_CM3[0] <= volume_cm3 <= BRAIN_CM3[1]:
            self.record.warn(f"brain mask volume {volume_cm3:.0f} cm3 is outside the expected range "
                             f"({BRAIN_CM3[0]}-{BRAIN_CM3[1]} cm3): check the brain extraction and the field of view")
        op_output.emit(dataclasses.replace(case, brain_mask=brain), self.OUT_VOLUMES)
