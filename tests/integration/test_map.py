"""The MAP image on a real study: started with `docker run` exactly as `monai-deploy run` would start it
(tools/map/run_map.py; the mounts and HOLOSCAN_* variables are checked against holoscan-cli's runner in
tests/unit/deploy/test_run_map.py), compared with the in-process run (`python -m app`) on the same model.

Equal means: the same SEG pixel data and frame geometry, the same RTSTRUCT contours (points, referenced slices,
ROI names); UIDs and dates differ by design. Runs with the test-only TorchScript bundle (mounted over the bundled
models) and, where `models/` holds real bundles, with the models baked into the image.

The image is built (or brought up to date) by `make map`, unless MAP_IMAGE names one already built. Skips only
where no Docker engine answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from holoscan_cli.runner.runner import _fetch_map_manifest
from model_fixtures import write_known_function_bundle

from tools.map import manifests, run_map

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STUDY = "tcia-brain-tumor-progression/PGBM-001/1992-04-02"
OUTPUTS = {"gtv_seg.dcm", "gtv_rtstruct.dcm", "gtv_review.png", "gtv_report.json"}
APP_USER = "1000:1000"  # the image's holoscan user


def docker_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "docker CLI not installed (make map-deps)"
    proc = subprocess.run(["docker", "info"], capture_output=True, text=True)
    return None if proc.returncode == 0 else f"no Docker engine answers: {proc.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def image() -> str:
    reason = docker_answers()
    if reason:
        pytest.skip(reason)
    if os.environ.get("MAP_IMAGE"):  # built by the caller (make map-test)
        return os.environ["MAP_IMAGE"]
    # Up to date with the working tree: docker's layer cache makes this quick when nothing changed.
    build = subprocess.run(["make", "map"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    version = manifests.read_config(REPO / "app.yaml")["application"]["version"]
    return f"gbm-gtv-map:{version}"


@pytest.fixture(scope="module")
def study(shared_data, tmp_path_factory) -> Path:
    # A copy under a neutral name (as the other integration tests do); the container gets it read-only.
    dest = tmp_path_factory.mktemp("in") / "study"
    shutil.copytree(shared_data / STUDY, dest)
    return dest


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def run_in_process(study: Path, out: Path, models: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "app", "-i", str(study), "-o", str(out), "-m", str(models)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def run_container(image: str, study: Path, out: Path, models: Path | None, *,
                  extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    out.mkdir(parents=True)
    try:  # the container's user owns its output folder, nothing else
        os.chown(out, *map(int, APP_USER.split(":")))
    except PermissionError:  # not root here: let any user write it
        out.chmod(0o777)
    app, pkg = _fetch_map_manifest(image)
    argv = run_map.docker_run_argv(image, app, pkg, input_dir=study, output_dir=out, models_dir=models,
                                   user=APP_USER)
    argv[2:2] = extra  # after "docker run"
    return subprocess.run(argv, capture_output=True, text=True, timeout=900)


def seg_content(path: Path) -> dict:
    ds = pydicom.dcmread(path)
    frames = [(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID,
               [str(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
              for f in ds.PerFrameFunctionalGroupsSequence]
    return {"pixels": ds.PixelData, "rows": ds.Rows, "columns": ds.Columns, "frames": frames,
            "shared": ds.SharedFunctionalGroupsSequence[0].to_json_dict(),
            "segments": [(s.SegmentNumber, s.SegmentLabel) for s in ds.SegmentSequence],
            "referenced_series": ds.ReferencedSeriesSequence[0].SeriesInstanceUID}


def rtstruct_content(path: Path) -> dict:
    ds = pydicom.dcmread(path)
    rois = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    contours = {
        rois[rc.ReferencedROINumber]: [
            (c.ContourImageSequence[0].ReferencedSOPInstanceUID, c.ContourGeometricType,
             [str(v) for v in c.ContourData])
            for c in rc.ContourSequence
        ]
        for rc in ds.ROIContourSequence
    }
    return {"rois": sorted(rois.values()), "contours": contours,
            "frame_of_reference": ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID}


def model_sets(tmp_path_factory) -> list[tuple[str, Path, Path | None]]:
    """(label, model folder for the host run, folder to mount over the image's models or None)."""
    known = write_known_function_bundle(tmp_path_factory.mktemp("models") / "known")
    sets = [("known-function model", known, known)]
    bundled = REPO / "models"
    if any((p / "configs" / "metadata.json").is_file() for p in bundled.glob("*")):
        sets.append(("models baked into the image", bundled, None))
    return sets


@pytest.fixture(scope="module")
def runs(image, study, tmp_path_factory):
    before = tree_state(study)
    results = []
    for label, host_models, mounted in model_sets(tmp_path_factory):
        root = tmp_path_factory.mktemp("runs")
        run_in_process(study, root / "host", host_models)
        proc = run_container(image, study, root / "map", mounted)
        assert proc.returncode == 0, f"{label}: container failed:\n{proc.stderr[-3000:]}"
        results.append((label, root / "host", root / "map", proc))
    assert tree_state(study) == before, "the input study changed"
    return results


def test_manifests_read_by_holoscan_cli(image):
    app, pkg = _fetch_map_manifest(image)  # holoscan-cli's own reader: docker create + cp of /etc/holoscan/*.json
    config = manifests.read_config(REPO / "app.yaml")
    assert app["version"] == pkg["version"] == config["application"]["version"]
    assert pkg["resources"] == config["resources"]
    assert json.loads(app["command"]) == ["python3", "/opt/holoscan/app"]
    assert app["sdk"] == "monai-deploy" and app["sdkVersion"] == "4.0.0"
    labels = json.loads(subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image],
                                       capture_output=True, text=True, check=True).stdout)
    assert labels["org.opencontainers.image.version"] == app["version"]
    bundled = sorted(p.name for p in (REPO / "models").glob("*") if p.is_dir())
    assert sorted(pkg["models"]) == bundled


def test_image_layout_and_non_root_user(image):
    script = ("id -u; test -f /opt/holoscan/app/__main__.py; test -d /opt/holoscan/app/app; "
              "test -f /var/holoscan/app.yaml; test -w /var/holoscan/output; ! test -w /opt/holoscan/app; "
              "! test -w /etc/holoscan/app.json; python3 -c 'import holoscan, monai.deploy, torch'")
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] != "0", "the image's default user is root"


def test_same_outputs_as_in_process_run(runs):
    for label, host, map_out, _ in runs:
        assert {p.name for p in map_out.iterdir()} == OUTPUTS, label
        assert seg_content(map_out / "gtv_seg.dcm") == seg_content(host / "gtv_seg.dcm"), f"{label}: SEG differs"
        assert rtstruct_content(map_out / "gtv_rtstruct.dcm") == rtstruct_content(host / "gtv_rtstruct.dcm"), (
            f"{label}: RTSTRUCT contours differ")
        map_report = json.loads((map_out / "gtv_report.json").read_text())
        host_report = json.loads((host / "gtv_report.json").read_text())
        assert map_report["model"] == host_report["model"], label
        assert map_report["structures"] == host_report["structures"], label


def test_outputs_written_by_the_non_root_user(runs):
    for label, _, map_out, _ in runs:
        owners = {p.stat().st_uid for p in map_out.iterdir()}
        assert owners == {int(APP_USER.split(":")[0])}, f"{label}: output owners {owners}"


def test_no_identifying_data_in_container_log(runs, study):
    ds = pydicom.dcmread(next(p for p in study.rglob("*") if p.is_file()), stop_before_pixels=True)
    for label, _, _, proc in runs:
        log = proc.stdout + proc.stderr
        for keyword in ("PatientName", "PatientID"):
            value = str(ds.get(keyword, "")).strip()
            assert not value or value not in log, f"{label}: {keyword} appears in the container log"


def test_runs_with_a_read_only_root_file_system(image, study, tmp_path):
    # As the Kubernetes descriptors run it (deploy/kubernetes: readOnlyRootFilesystem, emptyDir /tmp and logs).
    models = write_known_function_bundle(tmp_path / "models" / "known")
    proc = run_container(image, study, tmp_path / "out", models,
                         extra=("--read-only", "--tmpfs", "/tmp", "--tmpfs", "/var/holoscan/logs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (tmp_path / "out").iterdir()} == OUTPUTS
