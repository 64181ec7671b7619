"""Values copied from the input's headers into this product's outputs (DICOM-SEG, RTSTRUCT), without leaking them.

Headers from the wild hold values that do not conform to their VR: dates written ``1938-04-17``, times with colons,
PatientSex ``Male``. Assigning such a value to a pydicom dataset makes pydicom warn *quoting the value* (a birth date
in the log), and highdicom raises on it. So the writers copy identity attributes through :func:`copy_element` and
give highdicom headers passed through :func:`conformant_header`: a value that conforms is copied as it is; one that
does not is written empty (the Patient and General Study attributes concerned are type 2) and logged by keyword and
tag only, never by value. Person names and IDs are always copied as they are: the planning system matches on them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.valuerep import DA, DT, TM

logger = logging.getLogger(__name__)

_PARSERS = {"DA": DA, "DT": DT, "TM": TM}
# Enumerated values that highdicom checks when it copies the Patient module.
_ENUMERATED = {"PatientSex": frozenset({"M", "F", "O"})}
# Type 2 Patient and General Study attributes of every image IOD, which highdicom reads from its source image
# without a default: an input lacking one (some anonymisers delete them) gets it empty.
TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                       "StudyDate", "StudyTime", "ReferringPhysicianName")


def conforms(elem: DataElement) -> bool:
    """False for a date/time value that pydicom's DA/DT/TM (which highdicom uses) cannot parse, or an enumerated
    value outside its defined terms; True otherwise (person names, IDs and other text are always copied)."""
    if elem.VR == "SQ" or elem.value is None or elem.value == "":
        return True
    values = list(elem.value) if isinstance(elem.value, (list, MultiValue)) else [elem.value]
    parser = _PARSERS.get(elem.VR)
    if parser is not None:
        for value in values:
            try:
                parser(str(value).strip())
            except (TypeError, ValueError):
                return False
    allowed = _ENUMERATED.get(elem.keyword)
    return allowed is None or all(str(v).strip() in allowed for v in values)


def copy_element(header: Dataset, keyword: str, *, where: str) -> DataElement | None:
    """A copy of ``header[keyword]`` for an output, emptied when its value does not conform; None when absent.

    The copy is made without pydicom's value validation, so nothing quotes the value; ``where`` names the output
    in the one log line written when the value is emptied.
    """
    if keyword not in header:
        return None
    elem = header[keyword]
    if conforms(elem):
        return copy.deepcopy(elem)
    _log_emptied(where, [elem])
    return DataElement(elem.tag, elem.VR, "")


def conformant_headers(headers: Sequence[Dataset], *, where: str) -> list[Dataset]:
    """Shallow copies of ``headers`` whose top-level non-conforming values (see :func:`conforms`) are empty, and
    which hold every attribute of :data:`TYPE2_PATIENT_STUDY` (empty where the header lacks it).

    Each emptied attribute is logged once (keyword and tag, not the value), however many headers hold it.
    """
    out: list[Dataset] = []
    emptied: dict[int, DataElement] = {}
    for header in headers:
        ds = Dataset()
        for elem in header:
            if conforms(elem):
                ds.add(elem)
            else:
                emptied.setdefault(int(elem.tag), elem)
                ds.add(DataElement(elem.tag, elem.VR, ""))
        for keyword in TYPE2_PATIENT_STUDY:
            if keyword not in ds:
                setattr(ds, keyword, "")
        if hasattr(header, "file_meta"):
            ds.file_meta = header.file_meta
        out.append(ds)
    if emptied:
        _log_emptied(where, list(emptied.values()))
    return out


def _log_emptied(where: str, elems: Sequence[DataElement]) -> None:
    names = ", ".join(f"{e.keyword or 'private'} {e.tag} ({e.VR})" for e in elems)
    logger.warning("%s: reference value(s) of %s do not conform to their VR; written empty", where, names)
