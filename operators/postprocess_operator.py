"""PostprocessOperator: threshold, drop small components, fill holes on the reference grid; the quality verdict."""

from __future__ import annotations

from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import Contours, Prediction
from operators.core.model.spec import ModelSpec
from operators.core.pipeline import finish


class PostprocessOperator(GtvOperator):
    """Input ``IN_PREDICTION`` (reference grid). Output ``OUT_CONTOURS``: :class:`Contours` with the quality verdict."""

    IN_PREDICTION = "reference_prediction"
    OUT_CONTOURS = "contours"

    PARAMETERS: ClassVar[dict[str, object]] = {"model_spec": REQUIRED}
    model_spec: ModelSpec

    def run(self, op_input, op_output) -> None:
        pred: Prediction = op_input.receive(self.IN_PREDICTION)
        case, brain = pred.source.case, pred.source.brain_mask
        with self.record.stage("postprocess"):
            results, quality = finish(case.volumes, pred.probabilities, self.model_spec, brain,
                                      headers=case.reference_headers)
        labels, models = list(self.model_spec.labels), [self.model_spec.identity()] * len(self.model_spec.labels)
        masks = [r.mask for r in results]
        for label, result in zip(labels, results):  # a fact for the report; the masks travel on the port
            self.record.decisions[f"{label}_removed_components"] = result.removed_components
            self.record.decisions[f"{label}_kept_components"] = result.kept_components
        for flag in quality.flags:  # one WARNING line per flag
            self.record.warn(f"quality {quality.verdict.upper()}: {flag.code}: {flag.message}")
        if brain is not None:  # the brain is delivered as an organ at risk beside the GTV
            masks.append(brain.tissue)
            labels.append("Brain")
            models.append(brain.model)
        op_output.emit(Contours(masks=tuple(masks), labels=tuple(labels), case=case, models=tuple(models),
                                quality=quality), self.OUT_CONTOURS)
