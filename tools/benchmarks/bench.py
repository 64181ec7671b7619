"""Benchmark: the app's stages on a real study, wall time and peak memory each, printed as JSON.

    python -m tools.benchmarks.bench [--study DIR] [--models DIR] [--backend auto|torchscript|onnxruntime|tensorrt]
                          [--device auto|cpu|cuda] [--repeat N] [--out bench.json]

In the same run: the whole app as a process (``python -m app``, process start to outputs written), and the MONAI
Deploy SDK's stock operators on the stages they cover (``DICOMSeriesToVolumeOperator`` on the same T1c series,
``DICOMSegmentationWriterOperator`` on the same mask), with the ratio of their time to ours.
Speed is measured here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import psutil

from operators.core.model.predictor import TorchScriptOptions

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STUDY = REPO / ".." / "shared" / "data" / "tcia-brain-tumor-progression" / "PGBM-001" / "1992-04-02"



def torchscript_flags(options: TorchScriptOptions) -> list[str]:
    """The command-line flags that give ``options`` (the inverse of ``main``'s parsing)."""
    return (["--jit-optimize"] if options.jit_optimize else []) + ([] if options.cuda_fp16 else ["--cuda-fp32"])


class PeakRSS:
    """Samples this process's resident memory every 5 ms while a stage runs."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.005)

    @contextmanager
    def measure(self):
        self.peak = self.proc.memory_info().rss
        self._stop.clear()
        t = threading.Thread(target=self._run, daemon=True)
        t.start()
        try:
            yield
        finally:
            self._stop.set()
            t.join()


def timed(results: dict, name: str, fn, repeat: int):
    """Run ``fn`` ``repeat`` times; record median wall time and peak RSS; return the last result."""
    rss = PeakRSS()
    times, out = [], None
    with rss.measure():
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    results[name] = {"seconds": round(statistics.median(times), 4), "peak_rss_mb": round(rss.peak / 2**20, 1)}
    return out


def ours(study: Path, models: Path, backend: str, device: str, repeat: int, *,
         torchscript: TorchScriptOptions) -> tuple[dict, dict]:
    from app.config import DEFAULT_RULES
    from operators.core.dicom.folder import scan_folder
    from operators.core.dicom.volume import series_to_volume
    from operators.core.labels import structure
    from operators.core.model.predictor import load_models
    from operators.core.selection.series import load_rules, select_series
    from operators.core.selection.study import choose_study
    from operators.core.steps.brain import extract_brain
    from operators.core.steps.postprocess import postprocess
    from operators.core.steps.preprocess import align_to_reference, to_model_input, to_reference
    from operators.core.writers.rtstruct import build_rtstruct
    from operators.core.writers.seg import build_seg

    r: dict = {}
    spec, predictor, brain = timed(r, "model_load", lambda: load_models(models, backend=backend, device=device,
                                                                          torchscript=torchscript), 1)
    rules = load_rules(DEFAULT_RULES)
    channels = spec.preprocessing.channels
    st = timed(r, "load", lambda: choose_study(scan_folder(study), channels=channels, rules=rules), repeat)
    sel = timed(r, "select", lambda: select_series(st, channels, rules), repeat)
    built = timed(r, "to_volume", lambda: [series_to_volume(s.series) for s in sel], repeat)
    vols = [v for v, _ in built]
    headers = built[0][1]
    mask = None
    if brain is not None:
        mask = timed(r, "brain_extraction", lambda: extract_brain(vols[0], *brain), repeat)

    def resample():
        aligned = align_to_reference(vols, channels)
        return aligned, to_model_input(aligned, spec.preprocessing, names=channels,
                                       brain_mask=mask.tissue if mask is not None else None)

    aligned, (image, grid) = timed(r, "resample", resample, repeat)
    # the first call pays for lazy imports and first kernels (with --jit-optimize, TorchScript's profiling runs and
    # fusion compiles; with TensorRT, nothing: the engine is built or loaded with the model)
    timed(r, "inference_first_call", lambda: predictor.predict(image), 1)
    probs = timed(r, "inference", lambda: predictor.predict(image), repeat)
    ref_probs = timed(r, "inverse", lambda: to_reference(probs, grid, aligned[0].grid), repeat)
    within = mask.region.array if mask is not None else None
    gtv = timed(r, "postprocess", lambda: postprocess(aligned[0].with_array(ref_probs[0]), spec.postprocessing,
                                                      within=within), repeat).mask
    model = spec.identity()
    timed(r, "seg", lambda: build_seg([gtv], headers, structures=[structure("GTV")], model=model), repeat)
    timed(r, "rtstruct", lambda: build_rtstruct(gtv, headers, structure=structure("GTV"), model=model), repeat)
    info = {"backend": predictor.name, "backend_reason": predictor.reason, "model_grid": list(grid.shape),
            "reference_grid": list(aligned[0].grid.shape), "gtv_voxels": int(gtv.array.sum())}
    return r, {"info": info, "mask": gtv.array, "t1c_series": sel[0].series}


def stock(study: Path, mask, repeat: int) -> dict:
    """The SDK's own operators on the stages they cover, on the same series and mask."""
    import numpy as np
    from monai.deploy.core import Fragment
    from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
    from monai.deploy.operators.dicom_seg_writer_operator import DICOMSegmentationWriterOperator, SegmentDescription
    from monai.deploy.operators.dicom_series_to_volume_operator import DICOMSeriesToVolumeOperator
    from pydicom.sr.codedict import codes

    r: dict = {}
    frag = Fragment()
    loader = DICOMDataLoaderOperator(frag, name="loader")
    to_vol = DICOMSeriesToVolumeOperator(frag, name="to_volume")
    studies = timed(r, "sdk_load", lambda: loader.load_data_to_studies(study), repeat)
    series = next(s for st in studies for s in st.get_all_series() if s.SeriesDescription == "T1post")

    def convert():
        to_vol.prepare_series(series)
        return to_vol.create_volumetric_image(to_vol.generate_voxel_data(series), to_vol.create_metadata(series))

    image = timed(r, "sdk_to_volume", convert, repeat)
    desc = [SegmentDescription(segment_label="GTV",
                               segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                               segmented_property_type=codes.SCT.Neoplasm, algorithm_name="bench",
                               algorithm_version="0")]
    with tempfile.TemporaryDirectory() as d:
        writer = DICOMSegmentationWriterOperator(frag, segment_descriptions=desc, output_folder=Path(d), name="seg")
        # the SDK orders frames by its own slice sort; the mask is ours, in our slice order: same size, same work
        arr = np.asarray(mask, dtype=np.uint8)
        timed(r, "sdk_seg", lambda: writer.create_dicom_seg(arr, series, Path(d)), repeat)
    r["sdk_volume_shape"] = list(image.asnumpy().shape)
    return r


def end_to_end(study: Path, models: Path, backend: str, device: str, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "app", "-i", str(study), "-o", str(Path(d) / "out"), "-m",
                                str(models), "--backend", backend, "--device", device], cwd=REPO,
                               capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if p.returncode != 0:
                raise SystemExit(f"app failed: {p.stderr[-2000:]}")
            report = json.loads((Path(d) / "out" / "gtv_report.json").read_text())
    return {"seconds": round(statistics.median(times), 3), "runs": [round(t, 3) for t in times],
            "app_stages": report["stages"]}


def core_once(study: Path, models: Path, backend: str, device: str, out: Path, *,
              torchscript: TorchScriptOptions, t_start: float | None = None, cudnn: bool = True) -> dict:
    """The app's whole path once, in this process, without the Holoscan graph: models, DICOM in, SEG and RTSTRUCT
    out. Timed from outside (process start to files written) where Holoscan is not installed (the GPU machine);
    returns the seconds from ``t_start`` (the parent's clock at launch) at which each step ended: where a cold
    process spends its time (imports, CUDA start, first inferences).

    ``torchscript`` varies how TorchScript runs (the app keeps the defaults): the profiling optimiser, whose first
    calls compile fused kernels, and fp16 autocast on CUDA. ``cudnn=False`` (a diagnostic, never the app) runs
    convolutions without cuDNN, whose first calls on a GPU may compile kernels at run time.
    """
    marks: dict = {}
    t0 = t_start if t_start is not None else time.time()

    def mark(name: str) -> None:
        marks[name] = round(time.time() - t0, 3)

    mark("python_started")
    import torch

    mark("torch_imported")
    torch.backends.cudnn.enabled = cudnn
    if device in ("auto", "cuda") and torch.cuda.is_available():
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
        mark("cuda_context")
    import monai.inferers  # noqa: F401  (imported by the first inference otherwise; timed apart here)

    mark("monai_imported")
    from app.config import DEFAULT_RULES
    from operators.core.dicom.folder import scan_folder
    from operators.core.dicom.volume import series_to_volume
    from operators.core.labels import structure
    from operators.core.model.predictor import load_models
    from operators.core.pipeline import segment
    from operators.core.selection.series import load_rules, select_series
    from operators.core.selection.study import choose_study
    from operators.core.steps.brain import extract_brain
    from operators.core.steps.preprocess import align_to_reference
    from operators.core.writers.rtstruct import build_rtstruct
    from operators.core.writers.seg import build_seg

    mark("app_imported")
    spec, predictor, brain = load_models(models, backend=backend, device=device, torchscript=torchscript)
    mark("models_loaded")
    rules = load_rules(DEFAULT_RULES)
    channels = spec.preprocessing.channels
    st = choose_study(scan_folder(study), channels=channels, rules=rules)
    built = [series_to_volume(s.series) for s in select_series(st, channels, rules)]
    vols = align_to_reference([v for v, _ in built], channels)
    mark("dicom_to_volumes")
    mask = extract_brain(vols[0], *brain) if brain is not None else None
    mark("brain_extraction")
    gtv = segment(vols, spec, predictor, brain_mask=mask).results[0].mask
    mark("gtv")
    out.mkdir(parents=True, exist_ok=True)
    model = spec.identity()
    build_seg([gtv], built[0][1], structures=[structure("GTV")], model=model).save_as(out / "gtv_seg.dcm",
                                                                                  enforce_file_format=True)
    build_rtstruct(gtv, built[0][1], structure=structure("GTV"), model=model).save_as(
        out / "gtv_rtstruct.dcm", enforce_file_format=True)
    mark("outputs_written")
    return marks


def end_to_end_core(study: Path, models: Path, backend: str, device: str, repeat: int, *,
                    torchscript: TorchScriptOptions, cudnn: bool = True) -> dict:
    """Process start to SEG and RTSTRUCT written, the core path without Holoscan (:func:`core_once`), with the
    time at which each step ended in the last run."""
    times, marks = [], None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--core-once", str(Path(d) / "out"), "--study",
                   str(study), "--models", str(models), "--backend", backend, "--device", device,
                   "--t-start", repr(time.time())]
            p = subprocess.run(cmd + torchscript_flags(torchscript) + ([] if cudnn else ["--no-cudnn"]), cwd=REPO,
                               capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if p.returncode != 0 or not (Path(d) / "out" / "gtv_rtstruct.dcm").is_file():
                raise SystemExit(f"core path failed: {p.stderr[-2000:]}")
            marks = json.loads(p.stdout.strip().splitlines()[-1])
    return {"seconds": round(statistics.median(times), 3), "runs": [round(t, 3) for t in times],
            "torchscript": asdict(torchscript), "cudnn": cudnn, "steps_ended_at_s": marks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", type=Path, default=DEFAULT_STUDY)
    p.add_argument("--models", type=Path, default=REPO / "models")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path)
    p.add_argument("--skip-sdk", action="store_true", help="skip the SDK stock operators (need Holoscan)")
    p.add_argument("--skip-process", action="store_true", help="skip the whole-app process run (needs Holoscan)")
    p.add_argument("--core-process", action="store_true",
                   help="also time the core path as a process without Holoscan (process start to outputs written)")
    p.add_argument("--process-repeat", type=int, help="runs of each whole-process timing (default: --repeat)")
    p.add_argument("--core-once", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    p.add_argument("--t-start", type=float, help=argparse.SUPPRESS)
    p.add_argument("--jit-optimize", action="store_true",
                   help="turn on TorchScript's profiling optimiser, off in the app (its first calls compile fused "
                        "kernels)")
    p.add_argument("--cuda-fp32", action="store_true", help="TorchScript on CUDA in fp32 (the app: fp16 autocast)")
    p.add_argument("--no-cudnn", action="store_true",
                   help="diagnostic: the core process without cuDNN (its first GPU calls may compile kernels)")
    a = p.parse_args()
    os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "ERROR")
    torchscript = TorchScriptOptions(jit_optimize=a.jit_optimize, cuda_fp16=not a.cuda_fp32)
    if a.core_once:
        print(json.dumps(core_once(a.study, a.models, a.backend, a.device, a.core_once,
                                   torchscript=torchscript, t_start=a.t_start, cudnn=not a.no_cudnn)))
        return
    import torch

    stages, extra = ours(a.study, a.models, a.backend, a.device, a.repeat, torchscript=torchscript)
    sdk = None if a.skip_sdk else stock(a.study, extra["mask"], a.repeat)
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "study": str(a.study.resolve()),
        "torchscript": asdict(torchscript),
        **extra["info"],
        "stages": stages,
        "stages_total_seconds": round(sum(v["seconds"] for k, v in stages.items()
                                          if k not in ("model_load", "inference_first_call")), 3),
        "sdk_stock": sdk,
        # The SDK's loader reads pixel data while loading, ours only headers (pixels in to_volume): compare the
        # two stages together.
        "ratio_sdk_to_ours": None if sdk is None else {
            "load_and_to_volume": round((sdk["sdk_load"]["seconds"] + sdk["sdk_to_volume"]["seconds"])
                                        / (stages["load"]["seconds"] + stages["to_volume"]["seconds"]), 2),
            "seg": round(sdk["sdk_seg"]["seconds"] / stages["seg"]["seconds"], 2),
        },
        "end_to_end_process": None if a.skip_process else end_to_end(a.study, a.models, a.backend, a.device,
                                                                     a.process_repeat or a.repeat),
        "end_to_end_core_process": end_to_end_core(a.study, a.models, a.backend, a.device,
                                                   a.process_repeat or a.repeat,
                                                   torchscript=torchscript,
                                                   cudnn=not a.no_cudnn) if a.core_process else None,
    }
    emit_json(result, a.out)


def emit_json(result: dict, out: Path | None) -> None:
    """Print the figures as JSON, and write them to ``out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text)


if __name__ == "__main__":
    main()
