"""scan_folder and choose_study on the real studies and on synthetic folders with awkward layouts."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from dicom_synth import enhanced_mr, mr_header, pattern, rotation, save, stack_headers, write_stack
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.multiframe import frame_headers
from operators.core.dicom.series import Study
from operators.core.errors import InputDataError
from operators.core.selection.series import load_rules, select_series
from operators.core.selection.study import choose_study

RULES = Path(__file__).resolve().parents[4] / "app" / "series_rules.json"
SERIES_NAMES = {"T1post", "T1pre_reg", "FLAIR_reg", "T2_reg", "Mask_Tumor"}
ROT = rotation(10.0, -20.0)


@pytest.fixture(scope="module")
def tcia(shared_data: Path) -> Path:
    return shared_data / "tcia-brain-tumor-progression"


@pytest.fixture(scope="module")
def real_studies(tcia: Path) -> list[Study]:
    return scan_folder(tcia)


def test_real_folder_groups_three_studies_of_five_series(real_studies: list[Study]) -> None:
    assert len(real_studies) == 3
    counts = []
    for study in real_studies:
        assert {s.description for s in study.series} == SERIES_NAMES
        assert all(s.study_instance_uid == study.study_instance_uid for s in study.series)
        sizes = {len(s.instances) for s in study.series}
        assert len(sizes) == 1  # every series of a study covers the same slices
        counts.append(sizes.pop())
        mask = next(s for s in study.series if s.description == "Mask_Tumor")
        assert mask.sop_class_uid == "1.2.840.10008.5.1.4.1.1.7" and mask.modality == "MR"
    assert sorted(counts) == [22, 24, 25]
    assert sum(len(s.instances) for st in real_studies for s in st.series) == 355


def _two_series(folder: Path) -> None:
    """Two 6-slice series in nested folders, arbitrary file names without suffix."""
    for n, (series_uid, description) in enumerate([(generate_uid(), "T1 post"), (generate_uid(), "FLAIR")]):
        headers = stack_headers(6, rot=ROT, series_uid=series_uid, SeriesDescription=description, SeriesNumber=n + 1)
        write_stack(folder, pattern((6, 4, 5)), headers, names=[f"p/{n}/{k}/IM{k * 7 % 6}" for k in range(6)])


def test_nested_layout_and_non_dicom_files_give_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _two_series(tmp_path)
    (tmp_path / "notes.txt").write_text("export log\n")
    (tmp_path / "p" / "empty").write_bytes(b"")
    (tmp_path / "p" / "0" / "thumbs.db").write_bytes(bytes(range(256)) * 3)

    with caplog.at_level(logging.WARNING, logger="operators.core.dicom.folder"):
        (study,) = scan_folder(tmp_path)

    assert [s.description for s in study.series] == ["T1 post", "FLAIR"]
    assert all(len(s.instances) == 6 for s in study.series)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 3 file(s) that are not DICOM" in warnings[0].getMessage()
    assert "notes.txt" in warnings[0].getMessage()


def test_dicomdir_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _two_series(tmp_path)
    ds = Dataset()
    ds.FileSetID = "EXPORT"
    ds.DirectoryRecordSequence = []
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)

    with caplog.at_level(logging.INFO, logger="operators.core.dicom.folder"):
        (study,) = scan_folder(tmp_path)

    assert len(study.series) == 2
    assert "ignored 1 DICOMDIR file(s)" in caplog.text


def test_duplicate_instance_is_kept_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _two_series(tmp_path)
    original = tmp_path / "p" / "0" / "2" / "IM2"
    shutil.copy(original, tmp_path / "zz_copy_of_IM2")  # sorts after the original, which is kept

    with caplog.at_level(logging.WARNING, logger="operators.core.dicom.folder"):
        (study,) = scan_folder(tmp_path)

    assert [len(s.instances) for s in study.series] == [6, 6]
    assert "ignored 1 duplicate instance(s)" in caplog.text
    assert "zz_copy_of_IM2 (duplicate of p/0/2/IM2)" in caplog.text


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "incoming" / "sub").mkdir(parents=True)
    with pytest.raises(InputDataError, match=r"input folder .*incoming is empty"):
        scan_folder(tmp_path / "incoming")


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(b"\x00" * 300)
    with pytest.raises(InputDataError, match=rf"input folder {tmp_path} holds no usable DICOM .*2 not DICOM"):
        scan_folder(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"input folder .*nowhere does not exist"):
        scan_folder(tmp_path / "nowhere")


def test_enhanced_mr_frames_get_classic_headers(tmp_path: Path) -> None:
    volume = pattern((5, 4, 5))
    ds = enhanced_mr(volume, rot=ROT, origin=(0.0, 0.0, 0.0), step=2.0, pixel_spacing=(0.7, 0.9),
                     frame_order=[4, 2, 0, 1, 3])
    save(ds, tmp_path / "mf" / "IMG0001")

    (study,) = scan_folder(tmp_path)
    (series,) = study.series

    assert len(series.instances) == 5
    assert all(inst.path.name == "IMG0001" for inst in series.instances)
    first = series.instances[0].header
    assert "PerFrameFunctionalGroupsSequence" not in first
    assert [float(v) for v in first.PixelSpacing] == [0.7, 0.9]
    assert float(first.RepetitionTime) == 550.0 and float(first.EchoTime) == 9.5
    assert first.ScanningSequence == "SE" and first.ContrastBolusAgent == "Gadobutrol"
    z = [float(inst.header.ImagePositionPatient[2]) for inst in series.instances]
    assert z == pytest.approx([4 * 2.0 * ROT[2, 2], 2 * 2.0 * ROT[2, 2], 0.0, 2.0 * ROT[2, 2], 3 * 2.0 * ROT[2, 2]])
    (t1c,) = select_series(study, ["T1c"], load_rules(RULES))
    assert t1c.series is series


# ------------------------------------------------------------------------------------------- choose_study
def test_several_patients_are_refused_without_naming_them(real_studies: list[Study]) -> None:
    with pytest.raises(InputDataError, match=r"3 studies of 2 different patients") as info:
        choose_study(real_studies)
    assert "PGBM" not in str(info.value)


def test_two_usable_studies_are_listed_not_mixed(tcia: Path) -> None:
    studies = scan_folder(tcia / "PGBM-001")
    with pytest.raises(InputDataError, match=r"2 studies and 2 studies are usable") as info:
        choose_study(studies, channels=["T1c", "FLAIR"], rules=load_rules(RULES))
    message = str(info.value)
    for study in studies:
        assert f"study {study.study_instance_uid}: 5 series, modalities MR" in message
    dates = {str(s.series[0].first.StudyDate) for s in studies}
    assert not any(d in message for d in dates) and "PGBM" not in message


def test_the_only_usable_study_is_chosen(tcia: Path) -> None:
    first, second = scan_folder(tcia / "PGBM-001")
    mask_only = replace(first, series=tuple(s for s in first.series if s.description == "Mask_Tumor"))
    assert choose_study([mask_only, second]) is second
    no_flair = replace(second, series=tuple(s for s in second.series if s.description != "FLAIR_reg"))
    assert choose_study([first, no_flair], channels=["T1c", "FLAIR"], rules=load_rules(RULES)) is first
    with pytest.raises(InputDataError, match=r"no study is usable"):
        choose_study([mask_only, no_flair], channels=["T1c", "FLAIR"], rules=load_rules(RULES))


def test_logs_carry_no_patient_data(tcia: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tcia / "PGBM-003"
    header = pydicom.dcmread(next(folder.rglob("*.dcm")), stop_before_pixels=True)
    with caplog.at_level(logging.DEBUG):
        study = choose_study(scan_folder(folder))
        select_series(study, ["T1c", "FLAIR"], load_rules(RULES))
    assert "T1post" in caplog.text
    for value in (header.PatientID, str(header.PatientName), header.get("PatientBirthDate"), header.StudyDate):
        if value:
            assert str(value) not in caplog.text


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
def test_damaged_dicom_file_of_unknown_class_is_refused(tmp_path: Path) -> None:
    _two_series(tmp_path)
    broken = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\x7f" + b"\x02\x00\x10\x00UI\xff\x7fabc"
    (tmp_path / "broken").write_bytes(broken)  # DICM preamble, then a header that ends mid-element
    with pytest.raises(InputDataError, match=r"1 damaged DICOM file\(s\) that may be MR slices .*broken: "
                       r"header cannot be read \(ValueError: .*\); SOP class unknown"):
        scan_folder(tmp_path)


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
def test_truncated_mr_header_is_refused_naming_the_file(tmp_path: Path) -> None:
    _two_series(tmp_path)
    victim = tmp_path / "p" / "1" / "3" / "IM3"
    raw = victim.read_bytes()
    _truncate(victim, raw.index(b"\x20\x00\x0e\x00") + 12)  # inside SeriesInstanceUID (0020,000E)
    # pydicom reads the cut value as '1.2.' without complaint; the missing PixelData gives the truncation away
    with pytest.raises(InputDataError, match=r"p/1/3/IM3: the header ends without PixelData \(7FE0,0010\) "
                       r"\(truncated file\); SOP class MR Image Storage \(1\.2\.840\.10008\.5\.1\.4\.1\.1\.4\)"):
        scan_folder(tmp_path)


def test_damaged_non_image_object_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _two_series(tmp_path)
    sr = mr_header(ipp=(0, 0, 0), iop=(1, 0, 0, 0, 1, 0), sop_class="1.2.840.10008.5.1.4.1.1.88.33", Modality="SR")
    save(sr, tmp_path / "report.sr")
    _truncate(tmp_path / "report.sr", 300)  # cut inside the data set: only the file meta is left readable
    with caplog.at_level(logging.WARNING, logger="operators.core.dicom.folder"):
        (study,) = scan_folder(tmp_path)
    assert [len(s.instances) for s in study.series] == [6, 6]
    assert "skipped 1 damaged DICOM file(s) that are not MR images: report.sr" in caplog.text
    assert "Comprehensive SR Storage" in caplog.text


def test_conflicting_copies_of_one_instance_are_refused(tmp_path: Path) -> None:
    _two_series(tmp_path)
    ds = pydicom.dcmread(tmp_path / "p" / "0" / "2" / "IM2")
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(tmp_path / "zz_edited")
    with pytest.raises(InputDataError, match=r"files p/0/2/IM2 and zz_edited hold the same SOPInstanceUID "
                       r"\(0008,0018\) .* but different SeriesInstanceUID \(0020,000E\)"):
        scan_folder(tmp_path)


def test_frames_carry_their_frame_number(tmp_path: Path) -> None:
    volume = pattern((5, 4, 5))
    ds = enhanced_mr(volume, rot=ROT, origin=(0.0, 0.0, 0.0), step=2.0, pixel_spacing=(0.7, 0.9),
                     frame_order=[4, 2, 0, 1, 3])
    save(ds, tmp_path / "mf")
    (study,) = scan_folder(tmp_path)
    (series,) = study.series
    assert [int(i.header.ReferencedFrameNumber) for i in series.instances] == [1, 2, 3, 4, 5]
    assert [i.frame for i in series.instances] == [0, 1, 2, 3, 4]
    assert len({i.header.SOPInstanceUID for i in series.instances}) == 1


def test_legacy_converted_frames_get_back_their_classic_attributes() -> None:
    ds = enhanced_mr(pattern((3, 4, 5)), rot=ROT, origin=(0.0, 0.0, 0.0), step=2.0, pixel_spacing=(0.7, 0.9),
                     frame_order=[0, 1, 2])
    shared = ds.SharedFunctionalGroupsSequence[0]
    unassigned = Dataset()
    unassigned.InversionTime, unassigned.SequenceName, unassigned.SeriesNumber = 2500.0, "tir2d1", 99
    shared.UnassignedSharedConvertedAttributesSequence = [unassigned]
    for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        per_frame = Dataset()
        per_frame.InstanceNumber, per_frame.SequenceName = 10 + n, f"frame{n}"
        item.UnassignedPerFrameConvertedAttributesSequence = [per_frame]

    headers = frame_headers(ds)

    assert [float(h.InversionTime) for h in headers] == [2500.0] * 3
    assert [h.SequenceName for h in headers] == ["frame0", "frame1", "frame2"]  # per-frame wins over shared
    assert [int(h.InstanceNumber) for h in headers] == [1, 1, 1]  # the top-level value is kept
    assert [int(h.SeriesNumber) for h in headers] == [3, 3, 3]
