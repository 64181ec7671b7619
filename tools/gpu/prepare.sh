#!/usr/bin/env bash
# What the GPU machine lacks, packed small enough to travel with the repository (64 MiB a call), in ignored folders.
#   .whl/py/          pure-Python wheels it lacks (monai, pydicom, highdicom); torch, numpy, scipy, psutil are there
#   .whl/sitk.tar.xz  SimpleITK unpacked and xz-compressed (its wheel is 53 MB, the xz 29 MB)
#   .gpudata/study.tar.xz  T1post and FLAIRreg of PGBM-001/1992-04-02 (the benchmark study)
#   .gpudata/brats_case.tar  one BraTS case (T1c, FLAIR) for the GPU back-end tests
#   .gpudata/train/   the prepared 2 mm BraTS cases (training cache) and the hippocampus-pretrained checkpoint
# The benchmark call carries .whl, .gpudata/study.tar.xz and .gpudata/brats_case.tar; the training call .whl/py and
# .gpudata/train.
set -euo pipefail
cd "$(dirname "$0")/../.."
for d in /.whl/ /.gpudata/; do grep -qx "$d" .git/info/exclude || echo "$d" >> .git/info/exclude; done
rm -rf .whl .gpudata && mkdir -p .whl/py .gpudata/train
for req in monai==1.6.1 pydicom==3.0.2 highdicom==0.28.2 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 packaging==26.4 \
           pygments==2.21.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: -d .whl/py "$req"
done
tmp=$(mktemp -d)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$tmp" SimpleITK==2.5.7
(cd "$tmp" && unzip -q simpleitk-*.whl && rm simpleitk-*.whl && tar cf - . | xz -T0 -6 > "$OLDPWD/.whl/sitk.tar.xz")
rm -rf "$tmp"
study=../shared/data/tcia-brain-tumor-progression/PGBM-001/1992-04-02
tar cf - -C "$study" T1post FLAIRreg | xz -T0 -6 > .gpudata/study.tar.xz
# one BraTS case for the GPU back-end tests (tests/unit/operators/core/test_gpu_backends.py), as a shared/data tree
case=Brats18_CBICA_AQN_1
tar cf .gpudata/brats_case.tar -C ../shared/data "brats2018/$case/${case}_t1ce.nii.gz" "brats2018/$case/${case}_flair.nii.gz"
# the 2 mm cache of the GTV config (prepared here if no training run made it yet: about a minute)
py=python3; test -x .venv/bin/python && py=.venv/bin/python
key=$($py -c "
from training.brats import _cache_key, find_cases, load_prepared
from training.config import load_config, preprocessing_spec
c = load_config('training/configs/gtv.yaml'); pre = preprocessing_spec(c.preprocessing)
for case in find_cases(c.data.root, pre.channels):
    load_prepared(case, pre, c.data.cache_dir)
print(_cache_key(pre))" | tail -1)
mkdir -p ".gpudata/train/cache" && cp -r "work/cache/$key" .gpudata/train/cache/
# the hippocampus-pretrained checkpoint (training call only; ~13 min on this CPU if missing, see README)
if test -f work/experiment/pretrain/best.pt; then cp work/experiment/pretrain/best.pt .gpudata/train/pretrain_best.pt
else echo "no work/experiment/pretrain/best.pt: the benchmark call is ready; the training call needs the pretraining"
fi
du -sh .whl .gpudata .gpudata/*
