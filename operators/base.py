"""GtvOperator: the common shell of this app's operators.

A subclass sets ``self.record`` and implements ``run(op_input, op_output)``. A :class:`GtvError` (bad input, bad
model) raised there is recorded once in the run record and the operator emits nothing, so the rest of the graph
never runs and the application reports that one error; anything else is a bug and propagates to Holoscan.
"""

from __future__ import annotations

from monai.deploy.core import Operator

from operators.core.errors import GtvError
from operators.core.record import RunRecord


class GtvOperator(Operator):
    record: RunRecord

    def run(self, op_input, op_output) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, op_input, op_output, context) -> None:
        if self.record.error is not None:
            return
        try:
            self.run(op_input, op_output)
        except GtvError as e:
            self.record.fail(e)
