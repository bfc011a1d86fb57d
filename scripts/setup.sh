#!/usr/bin/env bash
# Everything nbflow needs on a fresh Debian 12 machine: Debian packages (only the
# missing ones), a virtualenv at .venv with nbflow installed editable plus its test
# extras. Safe to rerun: a second run with nothing changed takes a second or two.
# Nothing is registered globally (no kernelspec, no Jupyter config).
#
# Called by scripts/run-quickstart.sh and scripts/test.sh.
# Environment: PYTHON (default python3) picks the interpreter for the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(graphviz chromium chromium-driver postgresql)

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "setup: root is needed to run: $*  (run this script as root or install sudo)" >&2
        exit 1
    fi
}

# -- Debian packages ---------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null; then
    echo "setup: $PYTHON not found; install Python >= 3.10 or set PYTHON=/path/to/python3" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "setup: nbflow needs Python >= 3.10, $PYTHON is $("$PYTHON" -V 2>&1)." \
         "Set PYTHON=/path/to/python3.10+" >&2
    exit 1
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    # "dpkg -s" also succeeds for removed packages whose config files remain.
    dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
done
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# -- Dashboard front ends ------------------------------------------------------------
# The widgets' ES modules are built from labextension/ into nbflow/notebook/widgets/static/
# (git-ignored; a wheel carries them). npm ci runs only when the lockfile changed; the
# build itself takes about a second.
if ! command -v npm >/dev/null; then
    echo "setup: npm not found; install Node.js >= 18 with npm (it builds the dashboard)" >&2
    exit 1
fi
if [ ! -f labextension/node_modules/.package-lock.json ] ||
   [ labextension/package-lock.json -nt labextension/node_modules/.package-lock.json ]; then
    echo "setup: installing the dashboard's build tools (npm ci in labextension/)"
    (cd labextension && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd labextension && npm run --silent build)

# -- Python virtualenv ---------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependencies may have changed: the install is editable,
# so edits to nbflow's code need nothing.
stamp=.venv/.nbflow-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing nbflow and its test dependencies into .venv"
    pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check --no-input)
    "${pip[@]}" install --upgrade pip
    # An editable install with the JS build hook needs these in the venv first,
    # then --no-build-isolation (hatch-jupyter-builder and editables import at build time).
    "${pip[@]}" install hatchling hatch-jupyter-builder editables
    "${pip[@]}" install --no-build-isolation -e ".[test]"
    echo "$want" >"$stamp"
fi
version=$(.venv/bin/python -c 'import nbflow; print(nbflow.__version__)')
echo "setup: ready (.venv: $(.venv/bin/python -V 2>&1), nbflow $version)"
