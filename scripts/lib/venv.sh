# Sourced, not run. Builds a pinned Python environment once and reuses it:
#
#   pinned_venv NAME VENV_DIR REQUIREMENTS_FILE IMPORT_CHECK
#
# The environment is made with the first of python3.11 and python3 and the complete,
# --no-deps dependency set in REQUIREMENTS_FILE; it is rebuilt when that file changes (a
# sha256 stamp in VENV_DIR/.requirements). Parallel callers wait on one lock (at most 600 s).
# On failure it prints "HARNESS ERROR: ..." and exits 2.

venv_fail() {
  echo "HARNESS ERROR: $*"
  exit 2
}

pinned_venv() {
  local name="$1" venv="$2" req="$3" check="$4"
  mkdir -p "$venv" || venv_fail "cannot create $venv"
  exec 9>"$venv/.lock" || venv_fail "cannot open $venv/.lock"
  flock -w 600 9 || venv_fail "timed out waiting for another process to set up $venv"
  local want py
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if ! [ -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    py="$(command -v python3.11 || command -v python3)" ||
      venv_fail "no python3 found: $name needs Python 3 with its venv module (Debian: python3 python3-venv)"
    echo "$name: installing into $venv with $("$py" --version 2>&1)" >&2
    rm -rf "${venv:?}/bin" "${venv:?}/lib" "${venv:?}/include" "${venv:?}/pyvenv.cfg"
    "$py" -m venv "$venv" >&2 || venv_fail "$py -m venv $venv failed (Debian: install python3-venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req" >&2 ||
      venv_fail "pip could not install $req into $venv (it needs PyPI once)"
    "$venv/bin/python" -c "$check" >&2 || venv_fail "$name does not import in $venv"
    echo "$want" >"$venv/.requirements"
  fi
  flock -u 9
}
