#!/usr/bin/env bash
# The container test (tests/test_containers.py, `make test-containers`) needs a running
# Docker engine, Compose and debootstrap (for the local base where Docker Hub is
# unreachable). As root with apt-get this installs Debian's docker.io, docker-compose and
# debootstrap when missing and starts dockerd when nothing answers; otherwise it says what is
# missing. Safe to rerun. The pid of a dockerd started here is written to $PIDFILE, so that
# whoever started it can stop it (the container test does).
set -euo pipefail
PIDFILE=${HSCODE_DOCKERD_PIDFILE:-/var/run/hscode-dockerd.pid}
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
root=0
[[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 && root=1
if (( ${#missing[@]} )); then
  if (( root )); then
    echo "install: Debian's ${missing[*]} for the container test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install: missing ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
if ! docker info >/dev/null 2>&1; then
  if (( root )); then
    echo "install: starting dockerd (log: /var/log/hscode-dockerd.log, pid: $PIDFILE)"
    nohup dockerd >/var/log/hscode-dockerd.log 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || { echo "install: no Docker engine answers" >&2; exit 1; }
fi
