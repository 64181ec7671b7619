"""The series-rules file (``app/series_rules.json``): its schema, checked when it is loaded, and the matching of its
conditions against a DICOM header.

Condition semantics (the MONAI Deploy SDK's ``DICOMSeriesSelectorOperator`` format, extended): see
:mod:`operators.core.selection.series`, which scores and ranks series with them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from operators.core.errors import ConfigError

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
