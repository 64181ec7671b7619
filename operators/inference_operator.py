"""InferenceOperator: sliding-window inference through the injected predictor."""

from __future__ import annotations

from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import ModelInput, Prediction
from operators.core.model.predictor import Predictor


class InferenceOperator(GtvOperator):
    """Input ``IN_MODEL_INPUT``: :class:`ModelInput`. Output ``OUT_PREDICTION``: :class:`Prediction` (model grid)."""

    IN_MODEL_INPUT = "model_input"
    OUT_PREDICTION = "prediction"

    PARAMETERS: ClassVar[dict[str, object]] = {"predictor": REQUIRED}
    predictor: Predictor

    def run(self, op_input, op_output) -> None:
        model_input: ModelInput = op_input.receive(self.IN_MODEL_INPUT)
        with self.record.stage("inference"):
            probs = self.predictor.predict(model_input.image)
        self.record.decisions["backend"] = {"name": self.predictor.name, "reason": self.predictor.reason}
        op_output.emit(Prediction(probabilities=probs, grid=model_input.grid, source=model_input), self.OUT_PREDICTION)
