#!/usr/bin/env bash
# Build, from Debian packages alone, the base images the Dockerfiles and compose.yaml
# expect, for machines that cannot pull from Docker Hub.
#
#   sudo docker/build-local-base.sh          # then: docker/build-images.sh --local-base
#
# Makes three images (each skipped when it already exists; --force rebuilds):
#   hscode-local/debian:bookworm         debootstrap --variant=minbase of Debian 12
#   hscode-local/python:3.11-bookworm    Debian's Python 3.11 with venv:
#                                        stands in for python:3.11.7-slim-bookworm
#   hscode-local/postgres:15-bookworm    Debian's PostgreSQL 15 with the official image's
#                                        POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB
#                                        contract: stands in for postgres:16.6-bookworm
# The Debian mirror is the one apt already uses here (or DEBIAN_MIRROR). Extra CA
# certificates this machine trusts (/usr/local/share/ca-certificates, e.g. an egress proxy's)
# are added to the Python image so pip can reach PyPI through the same proxy; they are public
# certificates, not secrets.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUITE=${SUITE:-bookworm}
PREFIX=${HSCODE_LOCAL_BASE_PREFIX:-hscode-local}
force=0
[[ "${1:-}" == "--force" ]] && force=1

need() { command -v "$1" >/dev/null 2>&1 || { echo "build-local-base: $1 is missing ($2)" >&2; exit 1; }; }
need docker "apt-get install docker.io, then start dockerd"
have_image() { [[ $force -eq 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }

mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
        | grep -v security | head -1 || true)
  [[ -z "$uri" ]] && uri=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! have_image "$PREFIX/debian:$SUITE"; then
  need debootstrap "apt-get install debootstrap"
  [[ $(id -u) -eq 0 ]] || { echo "build-local-base: debootstrap needs root" >&2; exit 1; }
  rootfs=$(mktemp -d /var/tmp/hscode-rootfs.XXXXXX)
  # debootstrap mounts /proc and /sys inside while it configures; never follow them. Neither
  # is mounted any more when it succeeds, so umount fails - under set -e that failure ended
  # the trap (and the script, with umount's 32/64) before the rootfs was removed
  trap 'umount -l "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true; rm -rf --one-file-system "$rootfs"' EXIT
  echo "build-local-base: debootstrap $SUITE from $(mirror)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$(mirror)" >/dev/null
  # what the official images also leave out: apt lists and caches
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$PREFIX/debian:$SUITE" >/dev/null
  echo "build-local-base: $PREFIX/debian:$SUITE"
fi

if ! have_image "$PREFIX/python:3.11-$SUITE"; then
  ctx=$(mktemp -d)
  mkdir -p "$ctx/ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  docker build -q -f "$here/local-base/python.Dockerfile" --build-arg "BASE=$PREFIX/debian:$SUITE" \
    -t "$PREFIX/python:3.11-$SUITE" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "build-local-base: $PREFIX/python:3.11-$SUITE"
fi

if ! have_image "$PREFIX/postgres:15-$SUITE"; then
  docker build -q -f "$here/local-base/postgres.Dockerfile" --build-arg "BASE=$PREFIX/debian:$SUITE" \
    -t "$PREFIX/postgres:15-$SUITE" "$here/local-base" >/dev/null
  echo "build-local-base: $PREFIX/postgres:15-$SUITE"
fi
docker image ls "$PREFIX/*"
