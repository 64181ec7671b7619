"""Multi-process data parallel under torchrun: 2 CPU processes, gloo back end, on real BraTS cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_torchrun_two_cpu_processes(tmp_path, shared_data):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["Brats18_CBICA_AVG_1", "Brats18_TCIA01_425_1"],
                                 "validation": ["Brats18_CBICA_AQN_1"]}))
    out = tmp_path / "run"
    sets = [f"data.root={shared_data / 'brats2018'}", f"data.split_file={split}", f"data.cache_dir={tmp_path / 'c'}",
            "data.samples_per_epoch=4", "preprocessing.spacing_mm=[4.0, 4.0, 4.0]",
            "preprocessing.patch_size=[32, 32, 32]", "optim.epochs=2", "optim.threads=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training",
           "train", "--config", "training/configs/gtv.yaml", "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert history["world_size"] == 2
    assert [e["epoch"] for e in history["history"]] == [1, 2]
    assert (out / "best.pt").is_file()
