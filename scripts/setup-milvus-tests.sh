#!/usr/bin/env bash
# Python clients for the facedb-milvus wire tests (idempotent).
#
# Makes two virtual environments, one per pymilvus line the issue names:
#   $FACEDB_PYENV/pymilvus-2.2.7   pymilvus==2.2.7 (the seed's client) + numpy
#   $FACEDB_PYENV/pymilvus-2.3.8   pymilvus==2.3.8 (ORM + MilvusClient)  + numpy
# FACEDB_PYENV defaults to ~/.cache/facedb/pyenv (outside the repository, shared by worktrees).
# Everything comes from PyPI through pip. The Rust side needs no system protoc: the
# milvus-sdk-rust build script uses the vendored one from the protoc-bin-vendored crate.
# Prints the two interpreter paths on success. The Rust integration tests
# (crates/milvus/tests/pymilvus.rs) call this script themselves.
set -euo pipefail
ROOT="${FACEDB_PYENV:-${XDG_CACHE_HOME:-$HOME/.cache}/facedb/pyenv}"
PY="${PYTHON:-python3}"
mkdir -p "$ROOT"

# A fresh Debian/Ubuntu has python3 without the venv module (and pip): install them once.
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
  else
    echo "setup-milvus-tests: $PY lacks the venv module; install python3-venv" >&2
    exit 1
  fi
fi

make_env() { # name, pip requirements...
  local dir="$ROOT/$1"; shift
  local stamp="$dir/.facedb-ready"
  local want="$*"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/bin/python" ]]; then
    return 0
  fi
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  "$dir/bin/python" -c 'import pymilvus, numpy; print("pymilvus", pymilvus.__version__)' >/dev/null
  echo "$want" >"$stamp"
}

# pymilvus 2.2.7 pins grpcio<=1.53.0; its generated *_pb2 modules need protobuf < 5.
make_env pymilvus-2.2.7 "pymilvus==2.2.7" "grpcio==1.53.0" "protobuf>=3.20,<5" "numpy<2" "setuptools<81"
# pymilvus 2.3.8 pins grpcio<=1.60.0; its environs<=9.5 needs marshmallow<4.
make_env pymilvus-2.3.8 "pymilvus==2.3.8" "grpcio==1.60.0" "protobuf>=3.20,<5" "numpy<2" "setuptools<81" "marshmallow<4"

echo "$ROOT/pymilvus-2.2.7/bin/python"
echo "$ROOT/pymilvus-2.3.8/bin/python"
