"""Series selection: rule semantics, hard exclusions, scores and tie-breaks, on real and synthetic headers."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from dicom_synth import SECONDARY_CAPTURE, as_series, mr_header, rotation, stack_headers
from pydicom.uid import generate_uid

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.series import Series, Study
from operators.core.errors import ConfigError, SeriesSelectionError
from operators.core.selection.series import exclusion_reason, load_rules, matches, select_series, validate_rules

RULES_PATH = Path(__file__).resolve().parents[4] / "app" / "series_rules.json"
ROT = rotation(5.0, 10.0)
ANY_MR = {"selections": [{"name": "A", "conditions": {"Modality": "MR"}}, {"name": "B", "conditions": {}}]}


@pytest.fixture(scope="module")
def rules() -> dict:
    return load_rules(RULES_PATH)


@pytest.fixture(scope="module")
def real_studies(shared_data: Path) -> list[Study]:
    return scan_folder(shared_data / "tcia-brain-tumor-progression")


def _series(n: int = 8, *, step: float = 3.0, **attrs: object) -> Series:
    attrs.setdefault("series_uid", generate_uid())
    return as_series(stack_headers(n, rot=ROT, step=step, **attrs))


T1C = {"SeriesDescription": "AX T1 MPRAGE POST", "ContrastBolusAgent": "Gadovist", "ScanningSequence": ["GR", "IR"],
       "RepetitionTime": 2000, "EchoTime": 2.5, "InversionTime": 900}


# ------------------------------------------------------------------------------------------- real studies
def test_real_studies_pick_t1post_and_flair_never_the_mask(real_studies: list[Study], rules: dict) -> None:
    for study in real_studies:
        chosen = select_series(study, ["T1c", "FLAIR", "T1", "T2"], rules)
        assert [s.series.description for s in chosen] == ["T1post", "FLAIR_reg", "T1pre_reg", "T2_reg"]
        assert [s.channel for s in chosen] == ["T1c", "FLAIR", "T1", "T2"]
        assert chosen[0].score == 6 and chosen[1].score == 4
        assert all("Mask_Tumor" not in label for s in chosen for label, _ in s.candidates)
        mask = next(s for s in study.series if s.description == "Mask_Tumor")
        assert exclusion_reason(mask) == ("SOP class Secondary Capture Image Storage (SOPClassUID (0008,0016) "
                                          "1.2.840.10008.5.1.4.1.1.7) is not an MR image storage class")


def test_t2_and_flair_never_stand_in_for_each_other(real_studies: list[Study], rules: dict) -> None:
    """On the real headers: T2 (TR 3000-ish, TE > 60, no inversion) and FLAIR (long inversion) are told apart by
    timing and description; with one of them removed the other channel finds nothing rather than the wrong one."""
    for study in real_studies:
        without_flair = replace(study, series=tuple(s for s in study.series if s.description != "FLAIR_reg"))
        without_t2 = replace(study, series=tuple(s for s in study.series if s.description != "T2_reg"))
        assert [s.series.description for s in select_series(without_flair, ["T1c", "T2"], rules)] == \
            ["T1post", "T2_reg"]
        with pytest.raises(SeriesSelectionError, match=r"no series matches channel 'FLAIR'"):
            select_series(without_flair, ["T1c", "FLAIR"], rules)
        with pytest.raises(SeriesSelectionError, match=r"no series matches channel 'T2'"):
            select_series(without_t2, ["T1c", "T2"], rules)


def test_missing_channel_lists_what_the_study_holds(real_studies: list[Study], rules: dict) -> None:
    study = real_studies[-1]
    without_flair = replace(study, series=tuple(s for s in study.series if s.description != "FLAIR_reg"))
    with pytest.raises(SeriesSelectionError, match=r"no series matches channel 'FLAIR'") as info:
        select_series(without_flair, ["T1c", "FLAIR"], rules)
    message = str(info.value)
    assert "The study holds 4 series:" in message
    n = len(study.series[0].instances)
    mask = next(s for s in study.series if s.description == "Mask_Tumor")
    assert (f"#{mask.series_number} 'Mask_Tumor' MR, Secondary Capture Image Storage, "
            f"ImageType DERIVED\\SECONDARY\\OTHER, {n} instances: SOP class") in message
    t2_line = f"'T2_reg' MR, MR Image Storage, ImageType ORIGINAL\\PRIMARY\\M\\NORM\\DIS2D, {n} instances: score"
    assert t2_line in message
    assert "'T1post'" in message and "'T1pre_reg'" in message and "PGBM" not in message


# ------------------------------------------------------------------------------------------- rule semantics
HEADER = mr_header(ipp=(0, 0, 0), iop=(1, 0, 0, 0, 1, 0), SeriesDescription="Ax T1 POST gad", RepetitionTime=600,
                   EchoTime=8.9, ScanningSequence=["SE", "IR"], ImageType=["ORIGINAL", "PRIMARY", "M"])


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"Modality": "(?i)mr"}, True),
        ({"Modality": "CT"}, False),
        ({"SeriesDescription": "post"}, True),  # case-insensitive search
        ({"SeriesDescription": "^post"}, False),
        ({"ImageType": ["PRIMARY", "!DERIVED", "!SECONDARY"]}, True),
        ({"ImageType": ["PRIMARY", "!M"]}, False),
        ({"ImageType": ["DERIVED"]}, False),
        ({"ImageType": "PRIM"}, False),  # terms match whole values
        ({"ScanningSequence": ["IR"]}, True),
        ({"ScanningSequence": ["!IR"]}, False),
        ({"ScanningSequence": "GR|SE"}, True),
        ({"RepetitionTime": 600}, True),
        ({"RepetitionTime": 601}, False),
        ({"RepetitionTime": [500, 700]}, True),
        ({"RepetitionTime": [700, 900]}, False),
        ({"RepetitionTime": [1000, "<"]}, True),
        ({"RepetitionTime": [600, ">"]}, False),
        ({"RepetitionTime": [600, ">="]}, True),
        ({"RepetitionTime": [600, "!="]}, False),
        ({"EchoTime": "8\\.9"}, True),  # regex on a number: full match of its text
        ({"ContrastBolusAgent": ".*"}, False),  # absent attribute fails, as in the SDK
        ({"ImageOrientationPatient": "Axial"}, True),
        ({"ImageOrientationPatient": "sagittal"}, False),
        ({"SeriesDescription": None, "_comment": "ignored"}, True),
    ],
)
def test_condition_semantics(conditions: dict, expected: bool) -> None:
    assert matches(HEADER, conditions) is expected


def test_default_rules_validate_and_name_every_channel(rules: dict) -> None:
    assert [s["name"] for s in rules["selections"]] == ["T1c", "FLAIR", "T1", "T2"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{not json", r"bad\.json: not valid JSON"),
        (json.dumps({"selections": [{"name": "T1c", "condition": {}}]}), r"unknown key\(s\) \['condition'\]"),
        (json.dumps({"selections": [{"name": "T1c", "conditions": {"SeriesDescripton": "x"}}]}),
         r"'SeriesDescripton' is not a DICOM keyword"),
        (json.dumps({"selections": [{"name": "T1c", "conditions": {"SeriesDescription": "(post"}}]}),
         r"SeriesDescription regular expression '\(post' is invalid"),
        (json.dumps({"selections": [{"name": "T1c", "conditions": {"EchoTime": [30, "<<"]}}]}),
         r"EchoTime relation '<<' is not one of"),
        (json.dumps({"selections": [{"name": "T1c", "conditions": {"ReferencedImageSequence": "x"}}]}),
         r"ReferencedImageSequence \(0008,1140\) has VR SQ"),
        (json.dumps({"selections": [{"name": "T1c"}, {"name": "T1c"}]}), r"name 'T1c' appears twice"),
        (json.dumps({"selections": [{"name": "T1c", "score": [{"rule": "x", "points": 1}]}]}), r"'when' must be"),
        (json.dumps({"selection": []}), r"unknown key\(s\) \['selection'\]"),
    ],
)
def test_bad_rules_files_raise_config_error_naming_the_file(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_rules(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------- exclusions
@pytest.mark.parametrize(
    ("series", "reason"),
    [
        (_series(sop_class=SECONDARY_CAPTURE), r"SOP class Secondary Capture Image Storage"),
        (_series(ImageType=["DERIVED", "PRIMARY", "MPR"]), r"ImageType \(0008,0008\) holds DERIVED"),
        (_series(ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]), r"holds LOCALIZER"),
        (_series(3), r"only 3 slice\(s\), fewer than 5"),
        (_series(SeriesDescription="3-plane Scout"), r"names a localizer"),
    ],
)
def test_hard_exclusions_cannot_be_lifted_by_rules(series: Series, reason: str) -> None:
    assert exclusion_reason(series) is not None
    with pytest.raises(SeriesSelectionError, match=reason):
        select_series(Study("1.2.3", (series,)), ["B"], validate_rules(ANY_MR))


# ------------------------------------------------------------------------------------------- ranking
def test_tie_goes_to_more_slices_and_the_runner_up_is_logged(rules: dict, caplog: pytest.LogCaptureFixture) -> None:
    short, long = _series(6, SeriesNumber=4, **T1C), _series(8, SeriesNumber=5, **T1C)
    with caplog.at_level(logging.INFO, logger="operators.core.selection.series"):
        (chosen,) = select_series(Study("1.2.3", (short, long)), ["T1c"], rules)
    assert chosen.series is long and chosen.score == 6  # agent +3, "POST" +2, inversion-prepared T1 +1
    assert [label for label, _ in chosen.candidates] == [long.label(), short.label()]
    assert f"chose {long.label()} with score 6" in caplog.text
    assert f"runner-up {short.label()} with score 6 (tie broken by slices 8 vs 6" in caplog.text


def test_tie_goes_to_smaller_spacing_then_higher_series_number(rules: dict) -> None:
    coarse, fine = _series(8, step=3.0, SeriesNumber=9, **T1C), _series(8, step=2.0, SeriesNumber=2, **T1C)
    assert select_series(Study("1.2.3", (coarse, fine)), ["T1c"], rules)[0].series is fine
    first, repeat = _series(8, SeriesNumber=6, **T1C), _series(8, SeriesNumber=7, **T1C)
    assert select_series(Study("1.2.3", (repeat, first)), ["T1c"], rules)[0].series is repeat


def test_scores_decide_between_pre_and_post_contrast(rules: dict) -> None:
    pre = _series(SeriesDescription="T1 SE pre", RepetitionTime=550, EchoTime=12, ScanningSequence="SE")
    post = _series(SeriesDescription="T1 SE +C", RepetitionTime=550, EchoTime=12, ScanningSequence="SE")
    flair = _series(SeriesDescription="AX FLAIR", RepetitionTime=9000, EchoTime=120, InversionTime=2500,
                    ScanningSequence=["SE", "IR"])
    study = Study("1.2.3", (pre, post, flair))
    t1c, fl, t1 = select_series(study, ["T1c", "FLAIR", "T1"], rules)
    assert (t1c.series, fl.series, t1.series) == (post, flair, pre)
    assert t1c.score == 3  # "+C" in the description +2, T1 timing +1; no agent recorded


def test_one_series_never_serves_two_channels() -> None:
    rules = validate_rules(ANY_MR)
    a, b = _series(8), _series(6)
    chosen = select_series(Study("1.2.3", (a, b)), ["A", "B"], rules)
    assert [c.series for c in chosen] == [a, b]
    assert f"better match {a.label()} already serves A" in chosen[1].reason
    with pytest.raises(SeriesSelectionError, match=rf"no series left for channel 'B'.*{a.series_instance_uid}\) -> A"):
        select_series(Study("1.2.3", (a,)), ["A", "B"], rules)


def test_unknown_or_repeated_channel_is_a_config_error(rules: dict) -> None:
    study = Study("1.2.3", (_series(**T1C),))
    known = r"\['FLAIR', 'T1', 'T1c', 'T2'\]"
    with pytest.raises(ConfigError, match=rf"no selection for channel 'DWI'; they define {known}"):
        select_series(study, ["DWI"], rules)
    with pytest.raises(ConfigError, match=r"name a channel twice"):
        select_series(study, ["T1c", "T1c"], rules)


# ------------------------------------------------------------------------------------------- frame of reference
FLAIR = {"SeriesDescription": "AX FLAIR", "ScanningSequence": ["SE", "IR"], "RepetitionTime": 9000, "EchoTime": 120,
         "InversionTime": 2500}


def test_a_channel_only_in_another_frame_of_reference_is_refused(rules: dict) -> None:
    t1c, flair = _series(**T1C), _series(for_uid="1.2.826.0.1.3680043.8.498.999", **FLAIR)
    with pytest.raises(SeriesSelectionError, match=(
        r"no series for channel 'FLAIR' .* lies in the frame of reference of the T1c reference, series .*"
        rf"{flair.series_instance_uid}\) has FrameOfReferenceUID \(0020,0052\) 1\.2\.826\.0\.1\.3680043\.8\.498\.999, "
        r"expected 1\.2\.826\.0\.1\.3680043\.8\.498\.3; .*not registered"
    )) as info:
        select_series(Study("1.2.3", (t1c, flair)), ["T1c", "FLAIR"], rules)
    assert "score 4, FrameOfReferenceUID (0020,0052) 1.2.826.0.1.3680043.8.498.999" in str(info.value)


def test_a_registered_match_is_preferred_to_a_better_one_in_another_frame(rules: dict,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    t1c = _series(**T1C)
    elsewhere = _series(for_uid="1.2.826.0.1.3680043.8.498.999", **FLAIR)  # score 4
    registered = _series(**{**FLAIR, "SeriesDescription": "AX T2 dark fluid reg", "ScanningSequence": "SE"})  # 2
    with caplog.at_level(logging.INFO, logger="operators.core.selection.series"):
        _, flair = select_series(Study("1.2.3", (t1c, elsewhere, registered)), ["T1c", "FLAIR"], rules)
    assert flair.series is registered and flair.score == 2
    assert f"better match {elsewhere.label()} lies in another FrameOfReferenceUID (0020,0052)" in caplog.text
