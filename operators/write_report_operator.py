"""WriteReportOperator: the review picture and the JSON report, after both DICOM writers have finished."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from operators.base import REQUIRED, GtvOperator
from operators.core.case import Contours
from operators.core.labels import structure
from operators.core.steps.quality import banner
from operators.core.writers.report import render_png, write_json

PNG_FILE = "gtv_review.png"
JSON_FILE = "gtv_report.json"


class WriteReportOperator(GtvOperator):
    """Inputs ``IN_CONTOURS``, ``IN_SEG``, ``IN_RTSTRUCT`` (the writers' results). No output."""

    IN_CONTOURS = "contours"
    IN_SEG = "seg_written"
    IN_RTSTRUCT = "rtstruct_written"

    PARAMETERS: ClassVar[dict[str, object]] = {"output_folder": REQUIRED, "model": REQUIRED, "channels": (),
                                               "validation": None, "configuration": None}
    output_folder: Path
    model: dict
    channels: tuple[str, ...]
    validation: dict | None
    configuration: dict | None  # the channel-configuration decision (operators.core.selection.configuration)

    def run(self, op_input, op_output) -> None:
        contours: Contours = op_input.receive(self.IN_CONTOURS)
        op_input.receive(self.IN_SEG)
        op_input.receive(self.IN_RTSTRUCT)
        label = contours.labels[0]
        models = contours.models or (self.model,) * len(contours.labels)
        quality = contours.quality
        volumes = contours.volumes_cm3()
        with self.record.stage("report"):
            volume = volumes[label]
            oars = [structure(k).tg263_name for k in contours.labels[1:]]
            used = "+".join(self.channels)
            accuracy = (f", validation DSC {self.validation['dsc']:.2f} (n = {self.validation['n']})"
                        if self.validation else "")
            title = (f"{structure(label).tg263_name} {volume:.1f} cm3" + "".join(f", {n}" for n in oars)
                     + f" - from {used}{accuracy} - {self.model['name']} {self.model['version']}"
                     + " - UNAPPROVED, for clinical review")
            others = [(m.array, structure(k).color_rgb) for m, k in zip(contours.masks[1:], contours.labels[1:])]
            brain = contours.case.brain_mask
            slices = render_png(self.output_folder / PNG_FILE, contours.case.reference, contours.masks[0],
                                title=title, colour=structure(label).color_rgb, others=others,
                                slices_of=[contours.masks[0].array] if contours.masks[0].array.any()
                                else [m for m, _ in others[:1]],
                                window_region=brain.tissue.array if brain is not None else None,
                                banner=banner(quality) if quality is not None else None)
        report = {
            "status": "UNAPPROVED",
            "model": self.model,
            "configuration": {**(self.configuration or {}), "channels": list(self.channels),
                              "validation": self.validation},
            "quality": quality.to_dict() if quality is not None else None,
            "quality_signals": quality.signals if quality is not None else None,
            "structures": {lab: {"volume_cm3": volumes[lab], "model": mdl}
                           for lab, mdl in zip(contours.labels, models)},
            "review_png": {"file": PNG_FILE, "slices_shown": [k + 1 for k in slices]},
            "decisions": self.record.decisions,
            "stages": self.record.stages,
            "seconds_since_start": round(time.time() - self.record.started, 3),
            "warnings": self.record.warnings,
        }
        write_json(self.output_folder / JSON_FILE, report)
