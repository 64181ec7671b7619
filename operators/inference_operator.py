"""InferenceOperator: sliding-window inference through the injected predictor."""

from __future__ import annotations

from monai.deploy.core import Fragment, OperatorSpec

from operators.base import GtvOperator
from operators.core.case import ModelInput, Prediction
from operators.core.model.predictor import Predictor
from operators.core.record import RunRecord


class InferenceOperator(GtvOperator):
    """Input ``IN_MODEL_INPUT``: :class:`ModelInput`. Output ``OUT_PREDICTION``: :class:`Prediction` (model grid)."""

    IN_MODEL_INPUT = "model_input"
    OUT_PREDICTION = "prediction"

    def __init__(self, fragment: Fragment, *args, predictor: Predictor, record: RunRecord, **kwargs) -> None:
        self.predictor, self.record = predictor, record
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.IN_MODEL_INPUT)
        spec.output(self.OUT_PREDICTION)

    def run(self, op_input, op_output) -> None:
        model_input: ModelInput = op_input.receive(self.IN_MODEL_INPUT)
        with self.record.stage("inference"):
            probs = self.predictor.predict(model_input.image)
        self.record.decisions["backend"] = {"name": self.predictor.name, "reason": self.predictor.reason}
        op_output.emit(Prediction(probabilities=probs, grid=model_input.grid, source=model_input), self.OUT_PREDICTION)
