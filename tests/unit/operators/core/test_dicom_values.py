"""Values copied from input headers into outputs: non-conforming ones emptied, none quoted in the log."""

from __future__ import annotations

import logging

import pytest
from pydicom import Dataset, config
from pydicom.dataelem import DataElement

from operators.core.dicom.values import TYPE2_PATIENT_STUDY, conformant_headers, conforms, copy_element


@pytest.mark.parametrize(
    ("tag", "vr", "value", "ok"),
    [
        (0x00100030, "DA", "19470823", True),
        (0x00100030, "DA", "1947-08-23", False),
        (0x00080030, "TM", "091547.25", True),
        (0x00080030, "TM", "09:15:47", False),
        (0x0008002A, "DT", "last tuesday", False),
        (0x00100040, "CS", "F", True),
        (0x00100040, "CS", "Female", False),
        (0x00100040, "CS", "", True),
        (0x00100010, "PN", "Anyone^With^Many^Name^Parts^Extra", True),  # names are always copied
    ],
)
def test_conforms(tag: int, vr: str, value: str, ok: bool) -> None:
    with config.disable_value_validation():
        assert conforms(DataElement(tag, vr, value)) is ok


def _header(**values: str) -> Dataset:
    ds = Dataset()
    with config.disable_value_validation():
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return ds


def test_copies_are_emptied_and_logged_once_by_keyword_only(caplog: pytest.LogCaptureFixture) -> None:
    headers = [_header(PatientName="Doe^Jane", PatientBirthDate="1947-08-23", Modality="MR") for _ in range(5)]
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        out = conformant_headers(headers, where="DICOM-SEG")
        elem = copy_element(headers[0], "PatientBirthDate", where="RTSTRUCT")
    assert [h.PatientBirthDate for h in out] == [""] * 5 and elem.value == ""
    assert all(str(h.PatientName) == "Doe^Jane" for h in out)
    assert all(keyword in h for h in out for keyword in TYPE2_PATIENT_STUDY)  # absent type 2: added empty
    assert caplog.text.count("PatientBirthDate (0010,0030) (DA)") == 2  # once per output, not once per header
    assert "1947" not in caplog.text and "Doe" not in caplog.text
    assert headers[0].PatientBirthDate == "1947-08-23"  # the input headers are not changed
    assert copy_element(headers[0], "AccessionNumber", where="RTSTRUCT") is None
