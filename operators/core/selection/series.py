"""Choose, in one study, the series that feeds each model channel (``"T1c"``, ``"FLAIR"``, ``"T1"``, ``"T2"``).

For each channel the rules file (``app/series_rules.json``) holds one *selection* in the MONAI Deploy SDK
``DICOMSeriesSelectorOperator`` format, extended by a score. A series is chosen in four steps:

1. **Hard exclusions** (in code, no rule can lift them): SOP class other than MR Image Storage, Enhanced MR Image
   Storage or Legacy Converted Enhanced MR Image Storage (so Secondary Capture "masks" are out); ImageType holding
   DERIVED, SECONDARY or LOCALIZER; fewer than :data:`MIN_SLICES` slices; a SeriesDescription naming a scout or
   localizer. Series are never merged: one SeriesInstanceUID is one candidate.
2. **Conditions** (SDK semantics, all must hold, evaluated on the series' first header; the file's schema and the
   matching are in :mod:`operators.core.selection.rules`): a ``str`` is a regular
   expression searched case-insensitively (or a case-insensitive equal string); a list of strings on a
   multi-valued attribute such as ImageType lists values that must be present, ``"!VALUE"`` values that must be
   absent (each term is a regex matched against whole values, e.g. ``"SE|GR"``; the SDK compares substrings of
   the printed list); a single string on a multi-valued attribute is one such term; on numbers, ``600`` is equality,
   ``[1000, "<"]`` a relation (``>``, ``>=``, ``<``, ``<=``, ``!=``) and ``[lo, hi]`` an inclusive range;
   ``"ImageOrientationPatient": "Axial"`` (or Coronal, Sagittal) tests the dominant axis of the slice normal.
   A missing or empty attribute fails its condition, as in the SDK.
3. **Score**: each ``score`` entry ``{"rule", "points", "when"}`` adds ``points`` when all its ``when``
   conditions hold (same semantics). Only series scoring at least ``min_score`` match the channel. The default
   table (TR, TE, TI in ms):

   ======= ================================================================= ======
   channel rule                                                              points
   ======= ================================================================= ======
   T1c     ContrastBolusAgent recorded                                          +3
   T1c     SeriesDescription says post-contrast (post, +C, Gd, contrast, T1c)   +2
   T1c     T1 timing: no IR/EP in ScanningSequence, TR < 1000, TE < 30          +1
   T1c     inversion-prepared T1 (MPRAGE): IR, TI < 1300, TE < 10               +1
   T1c     SeriesDescription says pre-contrast / without                        -3
   T1c     SeriesDescription names FLAIR, T2, diffusion, perfusion              -3
   T1c     TE > 60 (T2-weighted)                                                -2
   FLAIR   IR with TI > 1500 and TR > 4000                                      +2
   FLAIR   SeriesDescription says FLAIR / TIRM / dark fluid                     +2
   FLAIR   SeriesDescription names T1 (T1-FLAIR)                                -3
   FLAIR   TE < 30 (T1-weighted)                                                -2
   ======= ================================================================= ======

   ``min_score`` is 2 for both, so a channel needs two independent signs (or one strong one) to match; the
   ``T1`` and ``T2`` selections follow the same pattern (see the JSON file).
4. **Ranking**: highest score; ties go to more slices, then smaller slice spacing, then the higher SeriesNumber
   (a repeated acquisition is numbered after the one it replaces), then the SeriesInstanceUID. Channels are
   served in order and a series serves at most one channel: a channel whose best match is taken falls back to
   its next match. Each choice is logged with its score and the runner-up.
5. **Frame of reference**: the first channel's series is the reference; a later channel takes only series with the
   reference's FrameOfReferenceUID (0020,0052): series in another frame are not registered to it and cannot be
   combined voxel by voxel. A channel whose matches all lie in another frame fails, naming them and both UIDs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydicom.multival import MultiValue
from pydicom.uid import UID

from operators.core.dicom.series import SelectedSeries, Series, Study
from operators.core.errors import ConfigError, SeriesSelectionError
from operators.core.selection.rules import load_rules, matches, validate_rules

__all__ = ["MR_IMAGE_SOP_CLASSES", "assign_series", "exclusion_reason", "is_selectable", "load_rules", "matches",
           "select_series", "validate_rules"]

logger = logging.getLogger(__name__)

MR_IMAGE_SOP_CLASSES: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
    }
)
MIN_SLICES = 5
EXCLUDED_IMAGE_TYPES = ("DERIVED", "SECONDARY", "LOCALIZER")
_LOCALIZER_DESCRIPTION = re.compile(r"scout|locali[sz]er|survey|3[- ]?plane|tri[- ]?pilot|\bloc\b", re.IGNORECASE)



# --------------------------------------------------------------------------------------------------- exclusions
def exclusion_reason(series: Series) -> str | None:
    """Why ``series`` can never feed a channel (hard exclusions), or None if it may."""
    classes = {str(inst.header.get("SOPClassUID", series.sop_class_uid)) for inst in series.instances}
    bad = sorted(classes - MR_IMAGE_SOP_CLASSES)
    if bad:
        return (
            f"SOP class {', '.join(_sop_name(u) for u in bad)} (SOPClassUID (0008,0016) {', '.join(bad)}) is not an MR "
            "image storage class"
        )
    image_type = {str(v).strip().upper() for v in _as_list(series.first.get("ImageType"))}
    hit = [t for t in EXCLUDED_IMAGE_TYPES if t in image_type]
    if hit:
        return f"ImageType (0008,0008) holds {'/'.join(hit)}"
    if len(series.instances) < MIN_SLICES:
        return f"only {len(series.instances)} slice(s), fewer than {MIN_SLICES} (localizer?)"
    if _LOCALIZER_DESCRIPTION.search(series.description or ""):
        return f"SeriesDescription (0008,103E) {series.description!r} names a localizer"
    return None


def is_selectable(series: Series) -> bool:
    """True when no hard exclusion applies to ``series``."""
    return exclusion_reason(series) is None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, MultiValue)):
        return list(value)
    return [value]


def _sop_name(uid: str) -> str:
    name = UID(uid).name if uid else ""
    return name if name and name != uid else (uid or "(none)")


# --------------------------------------------------------------------------------------------------- scoring
def score_series(series: Series, selection: Mapping[str, Any]) -> tuple[float, list[str]]:
    """Score of ``series`` for one selection, and the ``"rule +points"`` texts that contributed."""
    total = 0.0
    hits: list[str] = []
    for entry in selection.get("score", []):
        if matches(series.first, entry["when"]):
            total += float(entry["points"])
            hits.append(f"{entry['rule']} {float(entry['points']):+g}")
    return total, hits


def slice_spacing(series: Series) -> float:
    """Median distance (mm) between sorted slice positions along the slice normal; ``inf`` when unknown."""
    try:
        iop = np.asarray(series.first.ImageOrientationPatient, dtype=np.float64)
        pos = np.array([inst.header.ImagePositionPatient for inst in series.instances], dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return math.inf
    if iop.shape != (6,) or pos.ndim != 2 or len(pos) < 2:
        return math.inf
    steps = np.diff(np.sort(pos @ np.cross(iop[:3], iop[3:])))
    steps = steps[steps > 1e-3]
    return float(np.median(steps)) if steps.size else math.inf


def _rank_key(series: Series, score: float) -> tuple:
    number = series.series_number if series.series_number is not None else -1
    return (-score, -len(series.instances), slice_spacing(series), -number, series.series_instance_uid)


def _scored(study: Study, selection: Mapping[str, Any]) -> list[tuple[Series, float, list[str]]]:
    """Series that pass the hard exclusions and the conditions, with their scores, best first."""
    found = []
    for series in study.series:
        if exclusion_reason(series) is not None or not matches(series.first, selection.get("conditions", {})):
            continue
        score, hits = score_series(series, selection)
        found.append((series, score, hits))
    found.sort(key=lambda c: _rank_key(c[0], c[1]))
    return found


# --------------------------------------------------------------------------------------------------- selection
def select_series(study: Study, channels: Sequence[str], rules: Mapping[str, Any]) -> list[SelectedSeries]:
    """Choose one series per channel, in channel order.

    Args:
        study: the study to choose from (never mixed with another).
        channels: model channel names, each naming a selection in ``rules``.
        rules: validated rules (:func:`load_rules`).

    Raises:
        SeriesSelectionError: a channel has no matching series left; the message lists what the study holds.
        ConfigError: a channel has no selection in ``rules`` or is listed twice.
    """
    chosen = assign_series(study, channels, rules)
    for sel in chosen:
        logger.info("channel %s: %s", sel.channel, sel.reason)
    return chosen


def assign_series(study: Study, channels: Sequence[str], rules: Mapping[str, Any]) -> list[SelectedSeries]:
    """:func:`select_series` without logging (used to test whether a study is usable)."""
    by_name = {sel["name"]: sel for sel in rules["selections"]}
    if len(set(channels)) != len(channels):
        raise ConfigError(f"model channels {list(channels)} name a channel twice")
    used: dict[str, str] = {}  # SeriesInstanceUID -> channel
    result: list[SelectedSeries] = []
    reference_frame: str | None = None
    for channel in channels:
        if channel not in by_name:
            raise ConfigError(f"series rules have no selection for channel {channel!r}; they define {sorted(by_name)}")
        selection = by_name[channel]
        scored = _scored(study, selection)
        ranked = [c for c in scored if c[1] >= float(selection.get("min_score", 0))]
        free = [c for c in ranked if c[0].series_instance_uid not in used]
        if reference_frame:
            other_frame = [c for c in free if frame_of_reference(c[0]) != reference_frame]
            free = [c for c in free if c not in other_frame]
        if not free:
            raise SeriesSelectionError(
                _no_match_message(study, channel, selection, ranked, used, reference_frame, result)
            )
        best, score, hits = free[0]
        why = f"chose {best.label()} with score {score:g} ({'; '.join(hits) or 'conditions only'})"
        if ranked[0][0] is not best:  # a better match already serves an earlier channel, or lies in another frame
            better = ranked[0][0]
            if better.series_instance_uid in used:
                why += f"; better match {better.label()} already serves {used[better.series_instance_uid]}"
            else:
                why += (f"; better match {better.label()} lies in another FrameOfReferenceUID (0020,0052) than the "
                        f"{result[0].channel} reference")
        if len(free) > 1:
            runner, rscore, _ = free[1]
            why += f"; runner-up {runner.label()} with score {rscore:g}"
            if rscore == score:
                why += (
                    f" (tie broken by slices {len(best.instances)} vs {len(runner.instances)}, "
                    f"spacing {slice_spacing(best):.3g} vs {slice_spacing(runner):.3g} mm, SeriesNumber)"
                )
        else:
            why += "; no other series matched"
            below = [c for c in scored if c not in ranked]
            if below:
                why += f" (best below min_score: {below[0][0].label()} with score {below[0][1]:g})"
        used[best.series_instance_uid] = channel
        if reference_frame is None:
            reference_frame = frame_of_reference(best)
        result.append(
            SelectedSeries(
                channel=channel,
                series=best,
                score=score,
                reason=why,
                candidates=tuple((s.label(), sc) for s, sc, _ in ranked),
            )
        )
    return result


def frame_of_reference(series: Series) -> str:
    """FrameOfReferenceUID (0020,0052) of the series' first header, '' when absent."""
    return str(series.first.get("FrameOfReferenceUID", "") or "")


def _no_match_message(
    study: Study, channel: str, selection: Mapping[str, Any], ranked: list, used: Mapping[str, str],
    reference_frame: str | None, chosen: Sequence[SelectedSeries],
) -> str:
    min_score = float(selection.get("min_score", 0))
    elsewhere = [s for s, _, _ in ranked if s.series_instance_uid not in used and reference_frame
                 and frame_of_reference(s) != reference_frame]
    if elsewhere:
        head = (
            f"no series for channel {channel!r} in study {study.study_instance_uid} lies in the frame of reference "
            f"of the {chosen[0].channel} reference, {chosen[0].series.label()}: "
            + ", ".join(f"{s.label()} has FrameOfReferenceUID (0020,0052) {frame_of_reference(s)}" for s in elsewhere)
            + f", expected {reference_frame}; a series in another frame of reference is not registered to the "
            "reference and cannot be combined with it"
        )
    elif ranked:
        taken = ", ".join(f"{s.label()} -> {used[s.series_instance_uid]}" for s, _, _ in ranked)
        head = (
            f"no series left for channel {channel!r} in study {study.study_instance_uid}: every matching series "
            f"already serves another channel ({taken})"
        )
    else:
        head = (
            f"no series matches channel {channel!r} in study {study.study_instance_uid} "
            f"(rule {channel!r}: conditions {selection.get('conditions', {})}, min_score {min_score:g})"
        )
    lines = [head + f". The study holds {len(study.series)} series:"]
    for series in study.series:
        reason = exclusion_reason(series)
        if reason is None and not matches(series.first, selection.get("conditions", {})):
            reason = "conditions not met"
        if reason is None:
            score, _ = score_series(series, selection)
            reason = f"score {score:g}" + (f" below {min_score:g}" if score < min_score else "")
            if series.series_instance_uid in used:
                reason += f", already serves {used[series.series_instance_uid]}"
            elif reference_frame and frame_of_reference(series) != reference_frame:
                reason += f", FrameOfReferenceUID (0020,0052) {frame_of_reference(series) or '(none)'}"
        lines.append(f"  - {describe_series(series)}: {reason}")
    return "\n".join(lines)


def describe_series(series: Series) -> str:
    """One line for errors: number, description, modality, SOP class name, ImageType, instance count."""
    image_type = "\\".join(str(v) for v in _as_list(series.first.get("ImageType"))) or "(none)"
    return (
        f"#{series.series_number} '{series.description}' {series.modality or '(no modality)'}, "
        f"{_sop_name(series.sop_class_uid)}, ImageType {image_type}, {len(series.instances)} instances"
    )
