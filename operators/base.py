"""GtvOperator: the common shell of this app's operators.

A subclass names its ports as class constants (``IN_*`` inputs, ``OUT_*`` outputs: :meth:`setup` declares them), its
constructor parameters in ``PARAMETERS`` (keyword arguments stored as attributes of the same name; a default makes
one optional) and implements ``run(op_input, op_output)``: receive, call one function of ``operators.core``, emit.
Every operator gets the run record (``record``). A :class:`GtvError` (bad input, bad model) raised in ``run`` is
recorded once in the run record and the operator emits nothing, so the rest of the graph never runs and the
application reports that one error; anything else is a bug and propagates to Holoscan.
"""

from __future__ import annotations

from typing import ClassVar

from monai.deploy.core import Fragment, Operator, OperatorSpec

from operators.core.errors import GtvError
from operators.core.record import RunRecord

REQUIRED = object()


class GtvOperator(Operator):
    PARAMETERS: ClassVar[dict[str, object]] = {}
    record: RunRecord

    def __init__(self, fragment: Fragment, *args, record: RunRecord, **kwargs) -> None:
        self.record = record
        for name, default in self.PARAMETERS.items():
            if name not in kwargs and default is REQUIRED:
                raise TypeError(f"{type(self).__name__} needs the keyword argument {name!r}")
            setattr(self, name, kwargs.pop(name, default))
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        for name in sorted(vars(type(self))):
            if name.startswith("IN_"):
                spec.input(getattr(self, name))
            elif name.startswith("OUT_"):
                spec.output(getattr(self, name))

    def save_dicom(self, ds, path, decision: str) -> dict:
        """Write a DICOM object the graph produced, record its file and UIDs under ``decision``, return them."""
        ds.save_as(path, enforce_file_format=True)
        written = {"file": path.name, "sop_instance_uid": ds.SOPInstanceUID,
                   "series_instance_uid": ds.SeriesInstanceUID}
        self.record.decisions[decision] = written
        return written

    def run(self, op_input, op_output) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, op_input, op_output, context) -> None:
        if self.record.error is not None:
            return
        try:
            self.run(op_input, op_output)
        except GtvError as e:
            self.record.fail(e)
