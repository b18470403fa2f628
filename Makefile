# hscode — the two commands a newcomer needs:
#   make run    install (or reuse) the environment, then run the pipeline on the embedded defaults
#   make test   install (or reuse) the environment, then run the default test suite
#   make test-unit   the inner loop: unit tests only (no JVM, no training), under 3 minutes
#   make test-all    everything, the slow full-volume tests included
#   make test-containers   build the images and run the compose stack here (Docker)
#   make stack       build the images and start the compose stack (docker/.env first)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -m "not slow"
# two pytest-xdist workers, whole files each (a module's fixtures are built once); 0 = serial
PYTEST_WORKERS ?= 2

.PHONY: install browser run test test-unit test-all test-containers images stack stack-down lint doctor clean

install:
	@bash scripts/install.sh

# Debian's Chromium for the tests that open pages in a real browser
browser:
	@bash scripts/install-browser.sh

DS ?= $(shell date -u +%F)
BACKFILL ?= 0

run: install
	$(VENV)/bin/hscode demo --ds $(DS) --backfill-days $(BACKFILL)

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS) -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

test-unit: PYTEST_ARGS = -m unit
test-unit: PYTEST_WORKERS = 0
test-unit: test

test-all: PYTEST_ARGS =
test-all: test

# the jobs and Airflow images (a Debian base made here where Docker Hub is unreachable)
images:
	@bash scripts/install-docker.sh
	bash docker/build-images.sh

# the compose stack (docker/compose.yaml) with the secrets of docker/.env; Compose v1 or v2
COMPOSE := $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose) -f docker/compose.yaml
stack: images
	@test -f docker/.env || { echo "cp docker/.env.example docker/.env and set its passwords first" >&2; exit 1; }
	$(COMPOSE) up -d

stack-down:
	$(COMPOSE) down

# the images built, `hscode doctor` in the jobs image, the compose stack's retrain and night
test-containers: install
	$(PY) -m pytest tests/test_containers.py -p no:cacheprovider -v -s --durations=0

lint: install
	$(VENV)/bin/ruff check hscode jobs dags tests bench

doctor: install
	$(VENV)/bin/hscode doctor

clean:
	rm -rf $(VENV) data .pytest_cache
