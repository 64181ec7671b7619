"""InverseResampleOperator: the prediction back from the model grid onto the reference series grid."""

from __future__ import annotations

from operators.base import GtvOperator
from operators.core.case import Prediction
from operators.core.steps.preprocess import to_reference


class InverseResampleOperator(GtvOperator):
    """Input ``IN_PREDICTION`` (model grid). Output ``OUT_PREDICTION`` (reference grid)."""

    IN_PREDICTION = "prediction"
    OUT_PREDICTION = "reference_prediction"

    def run(self, op_input, op_output) -> None:
        pred: Prediction = op_input.receive(self.IN_PREDICTION)
        reference = pred.source.case.reference.grid
        with self.record.stage("inverse"):
            probs = to_reference(pred.probabilities, pred.grid, reference)
        op_output.emit(Prediction(probabilities=probs, grid=reference, source=pred.source), self.OUT_PREDICTION)
