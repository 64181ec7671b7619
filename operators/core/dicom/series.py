"""Data types for a DICOM study on disk: instances, series, and series chosen for the model's channels.

These are plain data; the functions that fill them live in ``dicom_io`` (scan a folder), ``selection`` (choose
series) and ``series_volume`` (build a :class:`~operators.core.geometry.Volume`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydicom import Dataset


@dataclass(frozen=True, eq=False)
class Instance:
    """One DICOM instance (file) found in the input.

    Attributes:
        path: file on disk.
        header: dataset read without pixel data (``stop_before_pixels=True``).
        frame: frame number (0-based) for multi-frame instances split into slices, else None.
    """

    path: Path
    header: Dataset = field(repr=False)
    frame: int | None = None


@dataclass(frozen=True, eq=False)
class Series:
    """All instances of one SeriesInstanceUID.

    Attributes:
        series_instance_uid, study_instance_uid: identifiers.
        modality: Modality (0008,0060).
        sop_class_uid: SOPClassUID of the instances.
        description: SeriesDescription (0008,103E), '' if absent.
        series_number: SeriesNumber (0020,0011) or None.
        instances: in the order found (not yet sorted by position).
    """

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    sop_class_uid: str
    description: str
    series_number: int | None
    instances: tuple[Instance, ...] = field(repr=False)

    @property
    def first(self) -> Dataset:
        return self.instances[0].header

    def label(self) -> str:
        """How logs and errors name a series: number, description and UID (no patient data)."""
        return f"series #{self.series_number} '{self.description}' ({self.series_instance_uid})"


@dataclass(frozen=True, eq=False)
class Study:
    """All series of one StudyInstanceUID found in the input."""

    study_instance_uid: str
    series: tuple[Series, ...] = field(repr=False)


@dataclass(frozen=True)
class SelectedSeries:
    """The series chosen for one model channel, and why.

    Attributes:
        channel: model channel name (``"T1c"``, ``"FLAIR"``).
        series: the chosen series.
        score: the documented selection score of the winner.
        reason: one sentence saying which rules matched and why this series beat the others.
        candidates: ``(label, score)`` of every series that matched, best first.
    """

    channel: str
    series: Series
    score: float
    reason: str
    candidates: tuple[tuple[str, float], ...] = ()
