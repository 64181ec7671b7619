"""A real DICOM network round trip: the app's SEG and RTSTRUCT go by C-STORE (dcmtk storescu) to Orthanc, the
stand-in for the PACS or treatment planning system that the Informatics Gateway exports to; what Orthanc stored is
read back over its REST API (/instances/<id>/file) and compared with what was sent.

Orthanc (Debian package `orthanc`, `make network-deps`) runs on free loopback ports with a throw-away configuration
and storage. Skips where Orthanc or storescu is not installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from model_fixtures import write_known_function_bundle

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STUDY = "tcia-brain-tumor-progression/PGBM-001/1992-04-02"
ORTHANC_AET = "PLANNING"
SENDER_AET = "GBMGTVMAP"
SOP_CLASSES = {"gtv_seg.dcm": "1.2.840.10008.5.1.4.1.1.66.4", "gtv_rtstruct.dcm": "1.2.840.10008.5.1.4.1.1.481.3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_outputs(shared_data, tmp_path_factory) -> Path:
    """SEG and RTSTRUCT written by the app (in process, test-only known-function model) on a real study."""
    study = tmp_path_factory.mktemp("in") / "study"
    shutil.copytree(shared_data / STUDY, study)
    models = write_known_function_bundle(tmp_path_factory.mktemp("models") / "known")
    out = tmp_path_factory.mktemp("out") / "result"
    proc = subprocess.run([sys.executable, "-m", "app", "-i", str(study), "-o", str(out), "-m", str(models)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A running Orthanc: yields (http base URL, DICOM port)."""
    for tool in ("Orthanc", "storescu"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make network-deps)")
    root = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "planning-system-stand-in", "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"), "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET, "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "StorageCompression": False,
        "Plugins": [], "SaveJobs": False, "ConcurrentJobs": 1,
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = open(root / "orthanc.log", "w")
    proc = subprocess.Popen(["Orthanc", str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/system", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Orthanc did not start: {(root / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield base, dicom_port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


@pytest.fixture(scope="module")
def round_trip(app_outputs, orthanc):
    base, dicom_port = orthanc
    files = [app_outputs / name for name in SOP_CLASSES]
    # --required: propose exactly the SOP classes and transfer syntaxes of the files (storescu reads them first).
    proc = subprocess.run(["storescu", "--required", "-aet", SENDER_AET, "-aec", ORTHANC_AET, "127.0.0.1",
                           str(dicom_port), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"C-STORE failed: {proc.stdout}{proc.stderr}"
    stored = {}
    for instance in json.loads(get(f"{base}/instances")):
        raw = get(f"{base}/instances/{instance}/file")
        stored[pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw)).SOPInstanceUID] = raw
    return {f.name: (f.read_bytes(), stored.get(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID))
            for f in files}


def test_orthanc_stored_both_objects(round_trip):
    for name, (_, received) in round_trip.items():
        assert received is not None, f"{name} not found in Orthanc after C-STORE"
        assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(received)).SOPClassUID == SOP_CLASSES[name]


def test_every_element_comes_back_equal(round_trip):
    for name, (sent, received) in round_trip.items():
        a = pydicom.dcmread(pydicom.filebase.DicomBytesIO(sent))
        b = pydicom.dcmread(pydicom.filebase.DicomBytesIO(received))
        differing = [str(e.tag) for e in a if e.tag not in b or b[e.tag] != e]
        differing += [str(e.tag) for e in b if e.tag not in a]
        assert differing == [], f"{name}: elements differ after the round trip: {differing[:10]}"
        assert b.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID, name


def canonical_bytes(raw: bytes) -> bytes:
    """The dataset (File Meta group left out) encoded again by one writer (pydicom, explicit VR little endian),
    every sequence and item with undefined length."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw))

    def undefined_lengths(dataset):
        for element in dataset:
            if element.VR == "SQ":
                element.is_undefined_length = element.value.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
                    undefined_lengths(item)

    undefined_lengths(ds)
    out = pydicom.filebase.DicomBytesIO()
    pydicom.filewriter.write_dataset(out, ds)
    return out.getvalue()


def test_dataset_bytes_are_identical(round_trip):
    # Orthanc writes its own File Meta group (its implementation UID, the sender's AE title), and dcmtk's network
    # encoder sends some sequences with explicit length where the file has undefined length: the same DICOM content
    # in another length encoding. Encoded again by one writer, the two datasets are byte-identical; the pixel data is
    # byte-identical as sent.
    for name, (sent, received) in round_trip.items():
        assert canonical_bytes(received) == canonical_bytes(sent), f"{name}: encoded dataset differs"
        a = pydicom.dcmread(pydicom.filebase.DicomBytesIO(sent))
        b = pydicom.dcmread(pydicom.filebase.DicomBytesIO(received))
        if "PixelData" in a:
            assert b.PixelData == a.PixelData, f"{name}: pixel data differs"
