#!/usr/bin/env bash
# Everything nbflow needs on a fresh Debian 12 machine: Debian packages (only the
# missing ones), a virtualenv at .venv with nbflow installed editable plus its test
# extras, the front ends built, and nbflow's JupyterLab and server extensions
# enabled in that virtualenv. Safe to rerun: a second run with nothing changed takes
# a few seconds. Nothing is registered outside .venv (no kernelspec, no global
# Jupyter config).
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

# -- Python virtualenv ---------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv .venv
fi
pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check --no-input)
# Reinstall only when the dependencies may have changed: the install is editable,
# so edits to nbflow's code need nothing.
stamp=.venv/.nbflow-setup
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
fresh=0
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    fresh=1
    echo "setup: installing the build tools into .venv"
    "${pip[@]}" install --upgrade pip
    # An editable install with the JS build hook needs these in the venv first,
    # then --no-build-isolation (hatch-jupyter-builder and editables import at
    # build time); JupyterLab brings jlpm, which builds the front ends.
    "${pip[@]}" install hatchling hatch-jupyter-builder editables "jupyterlab>=4.6,<5" \
        "jupyter-builder>=1.3"
fi

# -- Front ends ------------------------------------------------------------------------
# labextension/ is one package: the JupyterLab extension (src/, TypeScript, built by
# @jupyter/builder into nbflow/labextension/) and the widgets' ES modules
# (widgets/, into nbflow/notebook/widgets/static/); both outputs are git-ignored and
# a wheel carries them. jlpm install runs only when yarn.lock changed; under CI it
# is --immutable, so a yarn.lock that does not match package.json fails loudly.
if ! command -v node >/dev/null; then
    echo "setup: node not found; install Node.js >= 18 (it builds the front ends)" >&2
    exit 1
fi
jlpm=(env PATH="$PWD/.venv/bin:$PATH" "$PWD/.venv/bin/jlpm")
if [ ! -f labextension/node_modules/.yarn-state.yml ] ||
   [ labextension/yarn.lock -nt labextension/node_modules/.yarn-state.yml ] ||
   [ labextension/package.json -nt labextension/node_modules/.yarn-state.yml ]; then
    echo "setup: installing the front ends' build tools (jlpm install in labextension/)"
    if [ "${CI:-}" = true ]; then
        (cd labextension && "${jlpm[@]}" install --immutable)
    else
        (cd labextension && "${jlpm[@]}" install)
    fi
fi
(cd labextension && "${jlpm[@]}" run --silent build >/dev/null)

if [ "$fresh" = 1 ]; then
    echo "setup: installing nbflow and its test dependencies into .venv"
    # jlpm on PATH: the build hook finds the front ends built and skips, or builds them.
    env PATH="$PWD/.venv/bin:$PATH" "${pip[@]}" install --no-build-isolation -e ".[test]"
    echo "$want" >"$stamp"
fi
# The prebuilt extension is linked into the venv, and the server extension
# enabled there (an editable install leaves both out); both are idempotent.
.venv/bin/jupyter-builder develop --overwrite . >/dev/null
.venv/bin/jupyter server extension enable --sys-prefix nbflow >/dev/null 2>&1
plain() { sed 's/\x1b\[[0-9;]*m//g'; }   # the lists colour their words
if ! .venv/bin/jupyter labextension list 2>&1 | plain | grep -Eq '^ +nbflow v[^ ]+ enabled +OK'; then
    echo "setup: the nbflow JupyterLab extension is not 'enabled OK':" >&2
    .venv/bin/jupyter labextension list >&2 || true
    exit 1
fi
if ! .venv/bin/jupyter server extension list 2>&1 | plain | grep -Eq 'nbflow +enabled'; then
    echo "setup: the nbflow server extension is not enabled:" >&2
    .venv/bin/jupyter server extension list >&2 || true
    exit 1
fi
version=$(.venv/bin/python -c 'import nbflow; print(nbflow.__version__)')
echo "setup: ready (.venv: $(.venv/bin/python -V 2>&1), nbflow $version)"
