"""PostprocessOperator: threshold, drop small components, fill holes, on the reference grid."""

from __future__ import annotations

from monai.deploy.core import Fragment, OperatorSpec

from operators.base import GtvOperator
from operators.core.case import Contours, Prediction
from operators.core.geometry import Volume
from operators.core.model_spec import Postprocessing
from operators.core.postprocess import postprocess
from operators.core.record import RunRecord


class PostprocessOperator(GtvOperator):
    """Input ``IN_PREDICTION`` (reference grid). Output ``OUT_CONTOURS``: :class:`Contours`."""

    IN_PREDICTION = "reference_prediction"
    OUT_CONTOURS = "contours"

    def __init__(self, fragment: Fragment, *args, postprocessing: Postprocessing, labels: tuple[str, ...],
                 model: dict, record: RunRecord, **kwargs) -> None:
        self.postprocessing, self.labels, self.model, self.record = postprocessing, tuple(labels), model, record
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.IN_PREDICTION)
        spec.output(self.OUT_CONTOURS)

    def run(self, op_input, op_output) -> None:
        pred: Prediction = op_input.receive(self.IN_PREDICTION)
        within = pred.source.brain_mask.region.array if pred.source.brain_mask is not None else None
        masks = []
        with self.record.stage("postprocess"):
            for label, p in zip(self.labels, pred.probabilities):
                result = postprocess(Volume(array=p, grid=pred.grid,
                                            frame_of_reference_uid=pred.source.case.reference.frame_of_reference_uid),
                                     self.postprocessing, within=within)
                masks.append(result.mask)
                volume_cm3 = result.mask.array.sum() * pred.grid.voxel_volume_mm3 / 1000.0
                self.record.decisions[f"{label}_volume_cm3"] = round(float(volume_cm3), 3)
                self.record.decisions[f"{label}_removed_components"] = result.removed_components
                if volume_cm3 == 0:
                    self.record.warn(f"no {label} found: the {label} mask is empty")
        labels, models = list(self.labels), [self.model] * len(self.labels)
        brain = pred.source.brain_mask
        if brain is not None:  # the brain is delivered as an organ at risk beside the GTV
            masks.append(brain.tissue)
            labels.append("Brain")
            self.record.decisions["Brain_volume_cm3"] = round(brain.cm3()[0], 3)
            models.append(brain.model)
        op_output.emit(Contours(masks=tuple(masks), labels=tuple(labels), case=pred.source.case,
                                models=tuple(models)), self.OUT_CONTOURS)
