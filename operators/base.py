"""GtvOperator: the common shell of this app's operators.

A subclass names its ports as class constants (``IN_*`` inputs, ``OUT_*`` outputs: :meth:`setup` declares them), its
constructor parameters in ``PARAMETERS`` (keyword arguments stored as attributes of the same name; a default makes
one optional) and implements ``run(op_input, op_output)``: receive, call one function of ``operators.core``, emit.
Every operator gets the run record (``record``). A :class:`GtvError` (bad input, bad model) raised in ``run`` is
recorded once in the run record and the operator emits nothing, so the rest of the graph never runs and the
application reports that one error; anything else is a bug and propagates to Holoscan.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from monai.deploy.core import Fragment, Operator, OperatorSpec

from operators.core.case import Contours
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
        names = sorted({n for cls in type(self).__mro__ if issubclass(cls, GtvOperator) for n in vars(cls)})
        for name in names:
            if name.startswith("IN_"):
                spec.input(getattr(self, name))
            elif name.startswith("OUT_"):
                spec.output(getattr(self, name))

    def run(self, op_input, op_output) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, op_input, op_output, context) -> None:
        if self.record.error is not None:
            return
        try:
            self.run(op_input, op_output)
        except GtvError as e:
            self.record.fail(e)


class DicomWriterOperator(GtvOperator):
    """A writer of one DICOM object from the contours. Input ``IN_CONTOURS``: :class:`Contours`. Output
    ``OUT_WRITTEN``: ``{"file", "sop_instance_uid", "series_instance_uid"}``. A subclass names its ``FILE`` and
    ``STAGE`` and builds the dataset in :meth:`build`."""

    IN_CONTOURS = "contours"
    FILE: ClassVar[str]
    STAGE: ClassVar[str]
    PARAMETERS: ClassVar[dict[str, object]] = {"output_folder": REQUIRED, "model": REQUIRED}
    output_folder: Path
    model: dict

    def build(self, contours: Contours):  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        with self.record.stage(self.STAGE):
            ds = self.build(contours)
            path = self.output_folder / self.FILE
            ds.save_as(path, enforce_file_format=True)
        written = {"file": path.name, "sop_instance_uid": ds.SOPInstanceUID,
                   "series_instance_uid": ds.SeriesInstanceUID}
        self.record.decisions[self.STAGE] = written
        op_output.emit(written, self.OUT_WRITTEN)
