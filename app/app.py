"""The MONAI Deploy application graph.

    LoadDicom -> SelectSeries -> SeriesToVolume [-> BrainExtraction] -> Resample -> Inference -> InverseResample
        -> Postprocess -> WriteDicomSeg ----\
                       -> WriteRTStruct -----> WriteReport
                       ------------------------/

BrainExtraction is in the graph when the GTV model's metadata names a brain-extraction model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from holoscan.conditions import CountCondition
from monai.deploy.core import Application

from app.config import AppConfig
from operators.brain_extraction_operator import BrainExtractionOperator
from operators.core.model.predictor import Predictor
from operators.core.model.spec import ModelSpec
from operators.core.record import RunRecord
from operators.inference_operator import InferenceOperator
from operators.inverse_resample_operator import InverseResampleOperator
from operators.load_dicom_operator import LoadDicomOperator
from operators.postprocess_operator import PostprocessOperator
from operators.resample_operator import ResampleOperator
from operators.select_series_operator import SelectSeriesOperator
from operators.series_to_volume_operator import SeriesToVolumeOperator
from operators.write_dicom_seg_operator import WriteDicomSegOperator
from operators.write_report_operator import WriteReportOperator
from operators.write_rtstruct_operator import WriteRTStructOperator

logger = logging.getLogger(__name__)


class GtvContourApp(Application):
    """Glioblastoma GTV contouring on an MR study: DICOM-SEG, RTSTRUCT and a review report.

    Args:
        config: resolved configuration.
        spec: the verified model bundle.
        predictor: the inference back end (loaded once, before the graph starts).
        brain: ``(spec, predictor)`` of the brain-extraction model, when the GTV model uses one.
        rules: series selection rules.
        staging: folder the writers write into (moved into the output folder by the caller on success).
        record: this run's record (timings, decisions, warnings, the fatal error if any).
        study: the study already scanned (headers) to choose the channel configuration; None to scan in the graph.
        configuration: that choice, for the report (``Configuration.decision()``, operators.core.selection).
    """

    name = "gbm-gtv-contour"
    description = "Glioblastoma GTV auto-contouring on pre-operative brain MR"
    version = "0.1.0"

    def __init__(self, *, config: AppConfig, spec: ModelSpec, predictor: Predictor, rules: dict, staging: Path,
                 record: RunRecord, brain: tuple[ModelSpec, Predictor] | None = None, study=None,
                 configuration: dict | None = None) -> None:
        self.config, self.spec, self.predictor, self.rules, self.brain = config, spec, predictor, rules, brain
        self.study, self.configuration = study, configuration
        self.staging, self.record = staging, record
        super().__init__([__file__])

    def compose(self) -> None:
        r, spec = self.record, self.spec
        model = spec.identity()
        load = LoadDicomOperator(self, CountCondition(self, 1), name="load_dicom", input_folder=self.config.input,
                                 channels=spec.preprocessing.channels, rules=self.rules, record=r, study=self.study)
        select = SelectSeriesOperator(self, name="select_series", channels=spec.preprocessing.channels,
                                      rules=self.rules, record=r)
        to_volume = SeriesToVolumeOperator(self, name="series_to_volume", record=r)
        resample = ResampleOperator(self, name="resample", preprocessing=spec.preprocessing, record=r)
        infer = InferenceOperator(self, name="inference", predictor=self.predictor, record=r)
        inverse = InverseResampleOperator(self, name="inverse_resample", record=r)
        post = PostprocessOperator(self, name="postprocess", model_spec=spec, record=r)
        seg = WriteDicomSegOperator(self, name="write_seg", output_folder=self.staging, model=model, record=r)
        rt = WriteRTStructOperator(self, name="write_rtstruct", output_folder=self.staging, model=model, record=r)
        report = WriteReportOperator(self, name="write_report", output_folder=self.staging, model=model, record=r,
                                     channels=spec.preprocessing.channels, validation=spec.validation(),
                                     configuration=self.configuration)

        self.add_flow(load, select, {(load.OUT_STUDY, select.IN_STUDY)})
        self.add_flow(select, to_volume, {(select.OUT_SELECTION, to_volume.IN_SELECTION)})
        if self.brain is not None:
            brain = BrainExtractionOperator(self, name="brain_extraction", model=self.brain[0],
                                            predictor=self.brain[1], record=r)
            self.add_flow(to_volume, brain, {(to_volume.OUT_VOLUMES, brain.IN_VOLUMES)})
            self.add_flow(brain, resample, {(brain.OUT_VOLUMES, resample.IN_VOLUMES)})
        else:
            self.add_flow(to_volume, resample, {(to_volume.OUT_VOLUMES, resample.IN_VOLUMES)})
        self.add_flow(resample, infer, {(resample.OUT_MODEL_INPUT, infer.IN_MODEL_INPUT)})
        self.add_flow(infer, inverse, {(infer.OUT_PREDICTION, inverse.IN_PREDICTION)})
        self.add_flow(inverse, post, {(inverse.OUT_PREDICTION, post.IN_PREDICTION)})
        self.add_flow(post, seg, {(post.OUT_CONTOURS, seg.IN_CONTOURS)})
        self.add_flow(post, rt, {(post.OUT_CONTOURS, rt.IN_CONTOURS)})
        self.add_flow(post, report, {(post.OUT_CONTOURS, report.IN_CONTOURS)})
        self.add_flow(seg, report, {(seg.OUT_WRITTEN, report.IN_SEG)})
        self.add_flow(rt, report, {(rt.OUT_WRITTEN, report.IN_RTSTRUCT)})
