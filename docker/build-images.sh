#!/usr/bin/env bash
# Build hscode's images: hscode-jobs and hscode-airflow (docker/Dockerfile), and with --cuda
# hscode-jobs-cuda (docker/Dockerfile.cuda).
#
#   docker/build-images.sh                 # official base images when they can be pulled,
#                                          # else a Debian base built here (build-local-base.sh)
#   docker/build-images.sh --local-base    # always the local Debian base
#   docker/build-images.sh --cuda          # the GPU jobs image too (no GPU needed to build)
#
# Prints each build's time and each image's size. Images are labelled with the git revision.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_IMAGE=python:3.11.7-slim-bookworm
LOCAL_PYTHON=hscode-local/python:3.11-bookworm
base=auto cuda=0
for arg in "$@"; do
  case "$arg" in
    --local-base) base=local ;;
    --official-base) base=official ;;
    --cuda) cuda=1 ;;
    *) echo "usage: $0 [--local-base|--official-base] [--cuda]" >&2; exit 2 ;;
  esac
done

if [[ $base == auto ]]; then
  if docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1 \
     || timeout 60 docker pull -q "$PYTHON_IMAGE" >/dev/null 2>&1; then
    base=official
  else
    echo "build-images: $PYTHON_IMAGE cannot be pulled here; using the local Debian base"
    base=local
  fi
fi
if [[ $base == local ]]; then
  docker/build-local-base.sh >/dev/null
  PYTHON_IMAGE=$LOCAL_PYTHON
fi

revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
build() {  # build TAG DOCKERFILE [ARGS...]
  local tag=$1 file=$2 start
  shift 2
  start=$(date +%s)
  # the build's log is kept only when it fails: its last lines say which step and why
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/build-images.XXXXXX.log")
  if ! docker build -f "$file" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" \
      --label "org.opencontainers.image.revision=$revision" \
      --label "org.opencontainers.image.source=hscode" "$@" -t "$tag" . >"$log" 2>&1; then
    echo "build-images: $tag failed after $(( $(date +%s) - start ))s; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  rm -f "$log"
  printf 'build-images: %-22s %5ss  %s\n' "$tag" "$(( $(date +%s) - start ))" \
    "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')"
}
build hscode-jobs:latest docker/Dockerfile --target jobs
build hscode-airflow:latest docker/Dockerfile --target airflow
if [[ $cuda -eq 1 ]]; then
  build hscode-jobs-cuda:latest docker/Dockerfile.cuda
fi
echo "build-images: base $PYTHON_IMAGE, revision $revision"
if [[ $base == local ]]; then
  echo "build-images: for docker/compose.yaml set POSTGRES_IMAGE=hscode-local/postgres:15-bookworm in docker/.env"
fi
