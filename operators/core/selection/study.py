"""Pick the one study to contour when the input holds several (studies are never mixed).

Messages name studies by UID, number of series and modalities; never by patient name, ID or accession number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from operators.core.dicom.series import Study
from operators.core.errors import InputDataError, SeriesSelectionError
from operators.core.selection.series import assign_series, is_selectable

logger = logging.getLogger(__name__)


def choose_study(
    studies: Sequence[Study],
    *,
    channels: Sequence[str] | None = None,
    rules: Mapping[str, Any] | None = None,
) -> Study:
    """The one study to contour; studies are never mixed.

    Rule: all studies must belong to one patient (PatientID), else :class:`InputDataError` ("N different
    patients"; the IDs are not printed). One study is returned as is. Of several studies, the one study that is
    *usable* is returned: with ``channels`` and ``rules`` given, usable means every channel finds a series
    (:func:`operators.core.selection.series.select_series` would succeed); without them, it means the study holds at
    least one MR image series that passes the hard exclusions. No usable study, or more than one, raises
    :class:`InputDataError` listing each study by UID, number of series and modalities.
    """
    if not studies:
        raise InputDataError("the input holds no DICOM study")
    patients = {
        str(series.first.get("PatientID", "") or "") for study in studies for series in study.series
    }
    if len(patients) > 1:
        raise InputDataError(
            f"the input holds {len(studies)} studies of {len(patients)} different patients (by PatientID); "
            "give the studies of one patient only"
        )
    if len(studies) == 1:
        return studies[0]
    usable = [s for s in studies if _usable(s, channels, rules)]
    if len(usable) == 1:
        logger.info("input holds %d studies; using the only usable one, %s", len(studies),
                    usable[0].study_instance_uid)
        return usable[0]
    what = "no study is" if not usable else f"{len(usable)} studies are"
    listing = "\n".join(f"  - {_describe_study(s)}" for s in studies)
    raise InputDataError(
        f"the input holds {len(studies)} studies and {what} usable for the model "
        f"({'every channel finds a series' if channels and rules else 'holds an MR image series'}); "
        f"give one study only:\n{listing}"
    )


def _usable(study: Study, channels: Sequence[str] | None, rules: Mapping[str, Any] | None) -> bool:
    if channels and rules:
        try:
            assign_series(study, channels, rules)
        except SeriesSelectionError:
            return False
        return True
    return any(is_selectable(series) and series.modality.upper() == "MR" for series in study.series)


def _describe_study(study: Study) -> str:
    modalities = sorted({s.modality or "?" for s in study.series})
    return f"study {study.study_instance_uid}: {len(study.series)} series, modalities {'/'.join(modalities)}"
