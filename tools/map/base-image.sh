#!/usr/bin/env bash
# Build the offline base image for the MAP: Debian 12 (bookworm) made by debootstrap, imported with `docker import`.
# Used where no container registry can be reached (CI here, an air-gapped hospital build host); a connected
# production build uses the Dockerfile's default NVIDIA base instead.
#   tools/map/base-image.sh [TAG]   (default gbm-gtv-map-base:bookworm; does nothing if the image exists)
set -euo pipefail
TAG=${1:-gbm-gtv-map-base:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,libgomp1
CACHE=${MAP_CACHE:-build/map}

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists"; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap not installed (apt-get install debootstrap)" >&2; exit 2; }
tarball="$CACHE/base-$SUITE.tar"
if [ ! -s "$tarball" ]; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  mkdir -p "$CACHE"
  tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi
docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' "$tarball" "$TAG"
echo "base image $TAG imported from $tarball"
