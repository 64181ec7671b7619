"""Choose, in one study, the series that feeds each model channel (``"T1c"``, ``"FLAIR"``, ``"T1"``, ``"T2"``).

For each channel the rules file (``app/series_rules.json``) holds one *selection* in the MONAI Deploy SDK
``DICOMSeriesSelectorOperator`` format, extended by a score. A series is chosen in four steps:

1. **Hard exclusions** (in code, no rule can lift them): SOP class other than MR Image Storage, Enhanced MR Image
   Storage or Legacy Converted Enhanced MR Image Storage (so Secondary Capture "masks" are out); ImageType holding
   DERIVED, SECONDARY or LOCALIZER; fewer than :data:`MIN_SLICES` slices; a SeriesDescription naming a scout or
   localizer. Series are never merged: one SeriesInstanceUID is one candidate.
2. **Conditions** (SDK semantics, all must hold, evaluated on the series' first header): a ``str`` is a regular
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

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID

from operators.core.dicom.series import SelectedSeries, Series, Study
from operators.core.errors import ConfigError, SeriesSelectionError

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

_RELATIONS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "!=": lambda a, b: a != b,
}
_ORIENTATIONS = ("Sagittal", "Coronal", "Axial")  # dominant LPS axis of the slice normal: x, y, z
_TOP_KEYS = {"selections", "_comment"}
_SELECTION_KEYS = {"name", "conditions", "score", "min_score", "_comment"}
_SCORE_KEYS = {"rule", "points", "when", "_comment"}
_UNMATCHABLE_VRS = {"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"}


# --------------------------------------------------------------------------------------------------- rules file
def load_rules(path: Path) -> dict:
    """Read and validate a rules file; raises :class:`ConfigError` naming the file on any fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"series rules file {path}: cannot be read ({exc})") from exc
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"series rules file {path}: not valid JSON ({exc})") from exc
    return validate_rules(rules, source=str(path))


def validate_rules(rules: Any, *, source: str = "series rules") -> dict:
    """Check the structure, keys, DICOM keywords, regular expressions and numeric forms of ``rules``.

    Returns ``rules`` itself. Raises :class:`ConfigError` naming ``source`` and the offending selection.
    """
    if not isinstance(rules, dict):
        raise ConfigError(f"{source}: top level must be a JSON object, found {type(rules).__name__}")
    _check_keys(rules, _TOP_KEYS, f"{source}: top level")
    selections = rules.get("selections")
    if not isinstance(selections, list) or not selections:
        raise ConfigError(f"{source}: 'selections' must be a non-empty list")
    names: set[str] = set()
    for n, sel in enumerate(selections):
        where = f"{source}: selections[{n}]"
        if not isinstance(sel, dict):
            raise ConfigError(f"{where} must be an object")
        _check_keys(sel, _SELECTION_KEYS, where)
        name = sel.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        if name in names:
            raise ConfigError(f"{where}: selection name {name!r} appears twice")
        names.add(name)
        where = f"{source}: selection {name!r}"
        _check_conditions(sel.get("conditions", {}), f"{where} conditions")
        if not _is_number(sel.get("min_score", 0)):
            raise ConfigError(f"{where}: 'min_score' must be a number, found {sel['min_score']!r}")
        score = sel.get("score", [])
        if not isinstance(score, list):
            raise ConfigError(f"{where}: 'score' must be a list")
        for m, entry in enumerate(score):
            ewhere = f"{where} score[{m}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{ewhere} must be an object")
            _check_keys(entry, _SCORE_KEYS, ewhere)
            if not isinstance(entry.get("rule"), str) or not _is_number(entry.get("points")):
                raise ConfigError(f"{ewhere}: needs 'rule' (text) and 'points' (number)")
            if not isinstance(entry.get("when"), dict) or not entry["when"]:
                raise ConfigError(f"{ewhere}: 'when' must be a non-empty object of conditions")
            _check_conditions(entry["when"], f"{ewhere} when")
    return rules


def _check_keys(obj: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _check_conditions(conditions: Any, where: str) -> None:
    if not isinstance(conditions, dict):
        raise ConfigError(f"{where} must be an object of DICOM keyword -> condition")
    for keyword, cond in conditions.items():
        if keyword.startswith("_"):
            continue
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ConfigError(f"{where}: {keyword!r} is not a DICOM keyword")
        if dictionary_VR(tag) in _UNMATCHABLE_VRS:
            raise ConfigError(f"{where}: {keyword} {Tag(tag)} has VR {dictionary_VR(tag)}, which cannot be matched")
        if cond is None or cond == "" or cond == []:
            continue
        if isinstance(cond, str):
            try:
                re.compile(cond)
            except re.error as exc:
                raise ConfigError(f"{where}: {keyword} regular expression {cond!r} is invalid ({exc})") from exc
        elif _is_number(cond):
            continue
        elif isinstance(cond, list) and len(cond) == 2 and _is_number(cond[0]) and isinstance(cond[1], str):
            if cond[1] not in _RELATIONS:
                raise ConfigError(f"{where}: {keyword} relation {cond[1]!r} is not one of {sorted(_RELATIONS)}")
        elif isinstance(cond, list) and len(cond) == 2 and all(_is_number(v) for v in cond):
            if cond[0] > cond[1]:
                raise ConfigError(f"{where}: {keyword} range {cond} has low > high")
        elif isinstance(cond, list) and all(isinstance(v, str) and v.lstrip("!") for v in cond):
            for term in cond:
                try:
                    re.compile(term.lstrip("!"))
                except re.error as exc:
                    raise ConfigError(f"{where}: {keyword} term {term!r} is invalid ({exc})") from exc
        else:
            raise ConfigError(
                f"{where}: {keyword} condition {cond!r} is not a regex, a number, [value, op], [low, high] "
                "or a list of (!)values"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------------- conditions
def attribute_value(header: Dataset, keyword: str) -> Any:
    """The value of ``keyword`` in ``header`` for matching: ``str``, ``float``/``int``, ``list`` or None if absent."""
    value = header.get(keyword)
    if value is None or value == "" or (isinstance(value, (list, MultiValue)) and len(value) == 0):
        return None
    if isinstance(value, (list, MultiValue)):
        return [v if isinstance(v, (int, float)) else str(v) for v in value]
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        return None
    return str(value)


def matches(header: Dataset, conditions: Mapping[str, Any]) -> bool:
    """True when every condition holds on ``header`` (semantics in the module docstring)."""
    for keyword, cond in conditions.items():
        if keyword.startswith("_") or cond is None or cond == "" or cond == []:
            continue
        value = attribute_value(header, keyword)
        if value is None or not _match_value(keyword, value, cond):
            return False
    return True


def _match_value(keyword: str, value: Any, cond: Any) -> bool:
    if keyword == "ImageOrientationPatient" and isinstance(cond, str):
        return _orientation_label(value) == cond.strip().capitalize()
    is_terms = isinstance(cond, list) and all(isinstance(v, str) for v in cond)
    if is_terms or (isinstance(value, list) and isinstance(cond, str) and not _is_numeric_list(value)):
        # Terms against the values of a (multi-)valued attribute: "X" = some value fully matches regex X,
        # "!X" = no value does.
        values = [str(v).strip() for v in (value if isinstance(value, list) else [value])]
        for term in cond if isinstance(cond, list) else [cond]:
            negate, pattern = term.startswith("!"), term.lstrip("!")
            found = any(re.fullmatch(pattern, v, re.IGNORECASE) for v in values)
            if found == negate:
                return False
        return True
    if isinstance(value, list):  # multi-valued numbers: every value must satisfy the condition
        return all(_match_scalar(v, cond) for v in value)
    return _match_scalar(value, cond)


def _is_numeric_list(values: list) -> bool:
    return all(isinstance(v, (int, float)) for v in values)


def _match_scalar(value: Any, cond: Any) -> bool:
    if isinstance(value, (int, float)):
        if isinstance(cond, list) and isinstance(cond[1], str):
            return bool(_RELATIONS[cond[1]](float(value), float(cond[0])))
        if isinstance(cond, list):
            return float(cond[0]) <= float(value) <= float(cond[1])
        if isinstance(cond, str):
            return re.fullmatch(cond, str(value)) is not None
        return math.isclose(float(value), float(cond), rel_tol=1e-9, abs_tol=1e-9)
    text = str(value)
    if isinstance(cond, str):
        return text.casefold() == cond.casefold() or re.search(cond, text, re.IGNORECASE) is not None
    if isinstance(cond, list):  # numeric condition on a text value: try it as a number
        try:
            return _match_scalar(float(text), cond)
        except ValueError:
            return False
    return text.strip() == str(cond)


def _orientation_label(iop: Any) -> str | None:
    try:
        v = np.asarray(iop, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if v.shape != (6,):
        return None
    normal = np.cross(v[:3], v[3:])
    if np.linalg.norm(normal) < 1e-6:
        return None
    return _ORIENTATIONS[int(np.argmax(np.abs(normal)))]


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
