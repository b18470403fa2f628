#!/usr/bin/env bash
# Airflow container entry point: migrate the metadata DB once (idempotent), then run the
# Airflow component named by the arguments (api-server, scheduler, dag-processor, ...).
set -euo pipefail
if [[ "${1:-}" == "init" ]]; then
  exec airflow db migrate
fi
exec airflow "$@"
