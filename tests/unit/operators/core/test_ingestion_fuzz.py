"""Bounded mutation fuzzing of the ingestion path (scan_folder, series_to_volume) on real DICOM files.

Seeded random byte changes, insertions, deletions and truncations of one slice of a real three-slice T1post stack
(uncompressed and JPEG-LS): whatever the damage, the outcome is a volume or one of the product's own errors
(:class:`GtvError`), never another exception. The seed of a failing case is in the failure message.
"""

from __future__ import annotations

import logging
import random
import shutil
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import JPEGLSLossless

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume
from operators.core.errors import GtvError

CASES = 120  # per source and region; about 2 s each on the 2-core CPU


@pytest.fixture(scope="module")
def sources(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    files = sorted((shared_data / "tcia-brain-tumor-progression" / "PGBM-001" / "1992-04-02" / "T1post").iterdir())
    native = [p.read_bytes() for p in files[10:13]]
    folder = tmp_path_factory.mktemp("jpeg_ls")
    compressed = []
    for n, path in enumerate(files[10:13]):
        ds = pydicom.dcmread(path)
        ds.compress(JPEGLSLossless)
        ds.save_as(folder / f"{n}", enforce_file_format=True)
        compressed.append((folder / f"{n}").read_bytes())
    return {"native": native, "jpeg_ls": compressed}


def _mutate(raw: bytes, rng: random.Random, *, header_only: bool) -> bytes:
    data = bytearray(raw)
    end = raw.index(b"\xe0\x7f\x10\x00") + 12 if header_only else len(raw)
    kind = rng.random()
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(132, min(end, len(data)))
        if kind < 0.5:
            data[pos] = rng.randrange(256)
        elif kind < 0.8:
            data[pos:pos + rng.randint(1, 8)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
        else:
            del data[rng.randrange(132, len(data)):]
    return bytes(data)


@pytest.mark.parametrize("source", ["native", "jpeg_ls"])
@pytest.mark.parametrize("region", ["header", "anywhere"])
def test_damaged_slice_gives_a_volume_or_a_product_error(sources: dict, source: str, region: str,
                                                          tmp_path: Path) -> None:
    outcomes = {"volume": 0, "error": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            for seed in range(CASES):
                folder = tmp_path / str(seed)
                folder.mkdir()
                for n, raw in enumerate(sources[source]):
                    if n == 1:
                        raw = _mutate(raw, random.Random(seed), header_only=region == "header")
                    (folder / f"slice{n}").write_bytes(raw)
                try:
                    for study in scan_folder(folder):
                        for series in study.series:
                            series_to_volume(series)
                    outcomes["volume"] += 1
                except GtvError:
                    outcomes["error"] += 1
                except Exception as exc:  # noqa: BLE001 - the point of the test
                    pytest.fail(f"{source} {region} seed {seed}: {type(exc).__name__}: {exc}")
                shutil.rmtree(folder)
        finally:
            logging.disable(logging.NOTSET)
    assert outcomes["error"] > 0  # the mutations do damage
