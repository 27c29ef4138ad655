# Shared by scripts/check and scripts/demo (sourced, not run): messages, root, apt, and
# the Python to use on a fresh Debian machine. Callers set SCRIPT (their name) first.

export DEBIAN_FRONTEND=noninteractive PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_ROOT_USER_ACTION=ignore

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
    printf '%s: error: %s\n' "${SCRIPT:-script}" "$*" >&2
    exit 2
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        # Without a terminal (CI) sudo must not wait for a password nobody will type.
        if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
    else
        die "need root or sudo to run: $*"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it and retry"
    if [ "$APT_UPDATED" -eq 0 ]; then
        step "apt-get update"
        as_root apt-get update -q
        APT_UPDATED=1
    fi
    step "apt-get install $*"
    as_root apt-get install -y -q --no-install-recommends "$@"
}

# Sets PYTHON: $PYTHON if given, else python3 — or the project's .venv when python3 is
# Debian's "externally managed" one (PEP 668: it refuses `pip install`), creating the
# virtualenv (and installing python3-venv) when missing. Run from the project root.
find_python() {
    if [ -z "${PYTHON:-}" ]; then
        command -v python3 >/dev/null || apt_install python3 python3-venv python3-pip
        PYTHON=python3
        if "$PYTHON" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and not in_venv else 1)
PY
        then
            if [ ! -x .venv/bin/python ]; then
                "$PYTHON" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
                info "creating virtualenv $(pwd)/.venv"
                "$PYTHON" -m venv .venv
            fi
            PYTHON="$(pwd)/.venv/bin/python"
        fi
    fi
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$("$PYTHON" -V 2>&1) is too old: NextStep needs Python >= 3.11 (set PYTHON=...)"
    info "$("$PYTHON" -V 2>&1) at $(command -v "$PYTHON")"
}

# pip for $PYTHON (Debian's python3 may come without it).
ensure_pip() {
    "$PYTHON" -m pip --version >/dev/null 2>&1 || apt_install python3-pip
}
