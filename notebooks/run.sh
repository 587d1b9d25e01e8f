#!/usr/bin/env bash
# Builds notebooks/README.ipynb from examples/readme.rs and executes it, top to bottom, with
# the evcxr Jupyter kernel, storing the outputs in the file.
#
#   bash notebooks/run.sh [NBCONVERT_FLAGS]   (e.g. --allow-errors, to see every failing cell)
#
# Installs what is missing: evcxr_jupyter (crates.io, into ~/.cache/hashstash-tools) and
# Jupyter (PyPI, into a virtualenv there). The kernel builds hashstash with the `sql` and
# `dataframe` features in its own target folder, which takes a while. Stashes go
# to ~/.cache/hashstash as in the example; in the stored outputs, the home folder is
# written `~`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${HASHSTASH_TOOLS_DIR:-$HOME/.cache/hashstash-tools}
mkdir -p "$tools"

if [ ! -x "$tools/bin/evcxr_jupyter" ]; then
    echo "installing evcxr_jupyter into $tools"
    cargo install evcxr_jupyter --locked --root "$tools"
fi
if [ ! -x "$tools/jupyter/bin/jupyter" ]; then
    echo "installing Jupyter into $tools/jupyter"
    python3 -m venv "$tools/jupyter"
    "$tools/jupyter/bin/pip" install --quiet jupyter nbconvert nbclient
fi
export PATH="$tools/bin:$tools/jupyter/bin:$PATH"
# The kernel builds hashstash with DataFusion and polars in a temporary folder of its own,
# unoptimised (notebooks/evcxr.toml): about 12 minutes on two cores, every run. (Keeping
# that folder with EVCXR_TMPDIR made evcxr 0.22 fail to load its first cell here: "dlopen
# failed".)
evcxr_jupyter --install >/dev/null

python3 "$here/build.py" "$here/README.ipynb"
cd "$here"
jupyter nbconvert --to notebook --execute --inplace "$@" \
    --ExecutePreprocessor.kernel_name=rust \
    --ExecutePreprocessor.timeout=3600 \
    README.ipynb
python3 - "$here/README.ipynb" "$HOME" <<'PY'
import json, sys
path, home = sys.argv[1], sys.argv[2]
text = open(path).read().replace(home, "~")
json.loads(text)  # still a notebook
open(path, "w").write(text)
PY
echo "executed $here/README.ipynb"
