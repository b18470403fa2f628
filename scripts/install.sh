#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install the pinned stack.
#
#   scripts/install.sh            # idempotent; a no-op when nothing changed
#
# Environment:
#   VENV                 where the virtual environment lives (default: .venv)
#   PYTHON               interpreter used to create it (default: python3.11, else python3)
#   HSCODE_WHEEL_CACHE   where the built Horovod wheel is kept between installs
#                        (default: ~/.cache/hscode/wheels). Horovod 0.28.1 is an sdist that
#                        compiles for ~5 minutes; the wheel is built once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
UV_VERSION=0.13.9
HOROVOD_VERSION=0.28.1
# PostgreSQL's JDBC driver for the parallel extract (Spark's JDBC source): Debian's package,
# since Maven Central is not reachable from every build machine. Needed only with a
# PostgreSQL warehouse; the DuckDB default never loads it.
PGJDBC_PACKAGE=libpostgresql-jdbc-java
PGJDBC_VERSION=42.5.5-0+deb12u1
PGJDBC_JAR=/usr/share/java/postgresql.jar
WHEELS=${HSCODE_WHEEL_CACHE:-$HOME/.cache/hscode/wheels}

stamp_of() { cat requirements.txt setup.cfg pyproject.toml scripts/install.sh | sha256sum | cut -c1-16; }
STAMP="$VENV/.hscode-installed-$(stamp_of)"
if [[ -f "$STAMP" ]]; then
  echo "install: $VENV is up to date"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
UV="$VENV/bin/uv"

echo "install: syncing pinned requirements"
VIRTUAL_ENV="$VENV" "$UV" pip install -q -r requirements.txt

# Horovod: build against the installed TensorFlow once, keep the wheel, reuse it.
mkdir -p "$WHEELS"
tf_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("tensorflow-cpu"))')
wheel_dir="$WHEELS/tf-$tf_version"
if ! ls "$wheel_dir"/horovod-"$HOROVOD_VERSION"-*.whl >/dev/null 2>&1; then
  echo "install: building horovod $HOROVOD_VERSION against TF $tf_version (takes ~5 min, once)"
  mkdir -p "$wheel_dir"
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
    "$PY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
      --no-cache-dir -w "$wheel_dir" "horovod==$HOROVOD_VERSION"
fi
echo "install: installing horovod from $wheel_dir"
# Horovod's own requirements (cloudpickle, psutil, pyyaml, packaging) are pinned in requirements.txt.
VIRTUAL_ENV="$VENV" "$UV" pip install -q --no-deps "$wheel_dir"/horovod-"$HOROVOD_VERSION"-*.whl
VIRTUAL_ENV="$VENV" "$UV" pip install -q --no-deps -e .

"$PY" -m pip check

if [[ ! -f "$PGJDBC_JAR" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install: PostgreSQL JDBC driver ($PGJDBC_PACKAGE $PGJDBC_VERSION)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PGJDBC_PACKAGE=$PGJDBC_VERSION" \
      >/dev/null 2>&1 || {
      echo "install: $PGJDBC_VERSION not offered here; installing the distribution's version"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PGJDBC_PACKAGE" >/dev/null; }
  else
    echo "install: note: no $PGJDBC_JAR (apt-get install $PGJDBC_PACKAGE as root); only a" \
         "PostgreSQL warehouse's parallel extract needs it"
  fi
fi

# Spark's classes as a class-data-sharing archive for the venv's PySpark and this JDK: every
# driver JVM maps it instead of loading them from the jars (~5 s less per job start;
# hscode/spark_classes.py). Without a JDK yet, Spark starts without one. It is made beside
# the bytecode compile below (its JVM's dump runs on one core): 34 s + 57 s one after the
# other, 73 s side by side (2026-12-03: the whole install 134 s -> 114 s).
phase=$(date +%s)
archive_pid=
if command -v java >/dev/null 2>&1 || [[ -n "${JAVA_HOME:-}" ]]; then
  { "$PY" -m hscode.spark_classes || true
    echo "install: Spark class archive in $(( $(date +%s) - phase ))s"; } &
  archive_pid=$!
else
  echo "install: note: no java yet; Spark starts without its class archive" \
       "(\`$PY -m hscode.spark_classes\` makes it once a JDK is installed)"
fi

# Bytecode for every installed module, written once here: where PYTHONDONTWRITEBYTECODE is
# set (as on the build machines) Python never caches it, and each spark-submit, Horovod rank
# and Airflow task process compiled TensorFlow, PySpark, GX and Airflow from source again
# (same hour, source vs bytecode: import tensorflow + horovod 13-15 s -> 4.4-5.2 s, `airflow
# version` 5-7 s -> 2-3 s, the clean job 65-69 s -> 55 s). Reruns compile only what changed.
"$PY" -m compileall -q -j0 "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
echo "install: bytecode compiled in $(( $(date +%s) - phase ))s"
[[ -z "$archive_pid" ]] || wait "$archive_pid"

rm -f "$VENV"/.hscode-installed-*
touch "$STAMP"
echo "install: done in $(( $(date +%s) - start ))s ($(du -sh "$VENV" | cut -f1))"
