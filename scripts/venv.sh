# Sourced by the scripts: activate the virtual environment that is active, or .venv (made if
# missing, with the first python3 >= 3.11 found).
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "nbws needs Python >= 3.11; python3 is $(python3 --version)" >&2; exit 1; }
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
