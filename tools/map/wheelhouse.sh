#!/usr/bin/env bash
# Download every wheel the MAP needs into a folder, so that `docker build` installs with --no-index (inside a
# build the registries are out of reach here; an air-gapped hospital build host has none at all).
#   tools/map/wheelhouse.sh [DIR]        (default build/wheelhouse)
# PYTHON_VERSION=3.12 downloads for another interpreter than this one (e.g. an Ubuntu 24.04 NVIDIA base).
# Where the project's .venv exists, its versions constrain the transitive dependencies, so the image runs the
# same packages as the in-process run it is compared with.
set -euo pipefail
DIR=${1:-build/wheelhouse}
PIP=${PIP:-.venv/bin/pip}
[ -x "$PIP" ] || PIP="python3 -m pip"
mkdir -p "$DIR"
python3 tools/map/requirements.py pyproject.toml > "$DIR/requirements.txt"
args=(-r "$DIR/requirements.txt" setuptools wheel)
if [ -x .venv/bin/pip ]; then
  .venv/bin/pip freeze --exclude-editable | grep -v '^gbm-gtv-map' > "$DIR/constraints.txt"
  args+=(-c "$DIR/constraints.txt")
fi
if [ -n "${PYTHON_VERSION:-}" ]; then
  args+=(--python-version "$PYTHON_VERSION" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
         --only-binary=:all:)
fi
$PIP download -q -d "$DIR" "${args[@]}"
echo "wheelhouse $DIR: $(ls "$DIR"/*.whl | wc -l) wheels, $(du -sh "$DIR" | cut -f1)"
