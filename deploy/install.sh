#!/bin/sh
# The Python half of the image build (deploy/Dockerfile runs exactly this), kept as a script so that it can be
# checked outside Docker: `sh deploy/install.sh /tmp/venv .` builds the same virtualenv from a clean one.
#   $1: the virtualenv to create (the image: /opt/venv); $2: the source tree (repository root).
# Only the runtime dependencies are installed (requirements.lock also pins the test tools: used here as
# constraints, never as the list), TA-Lib from its PyPI wheel (the C library is inside it: no compiler and no
# libta-lib in the image; --only-binary makes a missing wheel fail instead of trying to compile).
set -eu
VENV=${1:?usage: install.sh VENV SRC}
SRC=${2:?usage: install.sh VENV SRC}
python3 -m venv "$VENV"
"$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet --upgrade pip
"$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet \
  --only-binary=TA-Lib,numpy,pandas,pyarrow -c "$SRC/requirements.lock" "$SRC"
"$VENV/bin/python" -c "import talib, roottrading.cli; print('talib', talib.__version__, 'ok')"
"$VENV/bin/roottrading" --help >/dev/null
