#!/usr/bin/env bash
# Assemble the CUDA 12.4 compiler Horovod's NCCL build needs, in NVIDIA's layout, from
# public packages only (no NVIDIA apt repository, no nvidia/cuda image):
#
#   docker/cuda-toolkit.sh /opt/cuda     # then HOROVOD_CUDA_HOME=/opt/cuda
#
#   bin/            nvcc, ptxas, fatbinary, nvlink, cudafe++, bin2c, crt/*.stub
#   nvvm/bin/cicc   nvvm/libdevice   from Debian's nvidia-cuda-toolkit 12.4.131 (non-free)
#   include/        crt/, the runtime's headers, libcu++ (nv/, cuda/, cub/, thrust/)
#   lib64/          libcudart.so(.12)   from PyPI's nvidia-cuda-{nvcc,runtime,cccl}-cu12 12.4
#                   libcudadevrt.a: an empty archive, for nvcc's unconditional -lcudadevrt
#                   (device-side runtime, used only by relocatable device code: not here)
#   shared-cudart.cmake   a CMake toolchain file: link the CUDA runtime shared, not static
#                         (PyPI carries no libcudart_static.a; one runtime per process, TF's)
#
# Run it with a Python that has pip (the build stage's virtual environment).
# Every download is pinned by its SHA-256. Debian's binaries are NVIDIA's, repackaged; they
# need glibc >= 2.34 (Debian 12 has 2.36) and a host g++ <= 13 (Debian 12: g++ 12).
# At run time TensorFlow's own CUDA 12.2 runtime (PyPI, tensorflow[and-cuda]) is the one
# loaded; docker/Dockerfile.cuda checks that every CUDA symbol Horovod needs is in it.
set -euo pipefail
dest=${1:-/opt/cuda}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEB=pool/non-free/n/nvidia-cuda-toolkit/nvidia-cuda-toolkit_12.4.131~12.4.1-2_amd64.deb
DEB_SHA256=cd5fe85aee38d108b315f408a688641478f2402622a10c677478eb7a6c4e5319
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -fsSL --retry 3 -o "$work/toolkit.deb" "$MIRROR/$DEB"
echo "$DEB_SHA256  $work/toolkit.deb" | sha256sum -c --quiet
dpkg-deb -x "$work/toolkit.deb" "$work/deb"

cat >"$work/wheels.txt" <<'EOF'
nvidia-cuda-nvcc-cu12==12.4.131 --hash=sha256:e4c9a35435c3b0e36c6397c5696334c9ea6650e524736cbd1c5d345ea099bb04
nvidia-cuda-runtime-cu12==12.4.127 --hash=sha256:64403288fa2136ee8e467cdc9c9427e0434110899d07c779f25b5c068934faa5
nvidia-cuda-cccl-cu12==12.4.127.post1 --hash=sha256:2027fa5fc75fbee703bf24e8275a40a605cf94a3e8fef8a7187897d49b34facb
EOF
python3 -m pip download -q --no-deps --require-hashes --only-binary :all: \
  -r "$work/wheels.txt" -d "$work/wheels"
for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" "$work/py"; done

mkdir -p "$dest"/{bin/crt,nvvm/bin,nvvm/libdevice,include,lib64}
deb=$work/deb/usr
cp "$deb/lib/nvidia-cuda-toolkit/bin/nvcc" "$deb/bin/ptxas" "$deb/bin/fatbinary" \
   "$deb/bin/nvlink" "$deb/bin/cudafe++" "$deb/bin/bin2c" "$dest/bin/"
cp "$deb"/lib/nvidia-cuda-toolkit/bin/crt/*.stub "$dest/bin/crt/"
cp "$deb/lib/nvidia-cuda-toolkit/bin/cicc" "$dest/nvvm/bin/"
cp "$deb"/lib/nvidia-cuda-toolkit/libdevice/* "$dest/nvvm/libdevice/"
cp -r "$work"/py/nvidia/cuda_nvcc/include/. "$work"/py/nvidia/cuda_runtime/include/. \
   "$work"/py/nvidia/cuda_cccl/include/. "$dest/include/"
find "$dest/include" -name __init__.py -delete  # the wheels' package markers
cp "$work/py/nvidia/cuda_runtime/lib/libcudart.so.12" "$dest/lib64/"
ln -sf libcudart.so.12 "$dest/lib64/libcudart.so"
ar rc "$dest/lib64/libcudadevrt.a"
chmod 0755 "$dest"/bin/* "$dest/nvvm/bin/cicc"
# NVIDIA's own profile, with the Debian-packaged tools where NVIDIA's installer puts them
cat >"$dest/bin/nvcc.profile" <<'EOF'
TOP              = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64"
CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
EOF
cat >"$dest/shared-cudart.cmake" <<'EOF'
# CMAKE_TOOLCHAIN_FILE for Horovod's build: its CMakeLists keeps a runtime library set here;
# the flag covers CMake's own compiler check, which links before that setting applies
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
set(CMAKE_CUDA_FLAGS_INIT "-cudart shared")
EOF
"$dest/bin/nvcc" --version | tail -2
