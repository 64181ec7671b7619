#!/usr/bin/env bash
# Wheels the GPU machine lacks (Python 3.12 there) and a compact copy of one study, both in ignored folders.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
grep -qx '/.gpudata/' .git/info/exclude || echo '/.gpudata/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl .gpudata
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for req in monai==1.6.1 SimpleITK==2.5.7 pydicom==3.0.2 highdicom==0.28.2 pylibjpeg==2.1.0 \
           pylibjpeg-libjpeg==2.5.0 pylibjpeg-openjpeg==2.6.0 pyjpegls==1.5.1 scikit-image==0.26.0 \
           psutil==7.2.2 PyYAML==6.0.4 typing-extensions lazy-loader==0.6 imageio==2.38.1 tifffile==2026.3.3; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
    -d .whl "$req"
done
rsync -a --delete ../shared/data/tcia-brain-tumor-progression/PGBM-001/1992-04-02/ .gpudata/PGBM-001/1992-04-02/
du -sh .whl .gpudata
