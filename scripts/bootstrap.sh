# Sourced by scripts/serve, scripts/test and scripts/bench: makes sure the system
# packages (PostgreSQL server with pg_sphere) and the Python environment (.venv)
# are there. As root it installs what is missing; otherwise it says what to install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AIOUWS_VENV:-$ROOT/.venv}"

say() { printf 'bootstrap: %s\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing system packages: $*"
        say "install them with: sudo apt-get install -y $*"
        exit 1
    fi
    say "installing $*"
    if [ -z "${_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_major() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$dir" ] && basename "$(dirname "$(dirname "$dir")")"
}

ensure_system() {
    local wanted=()
    command -v python3 >/dev/null || wanted+=(python3)
    python3 -c 'import venv, ensurepip' 2>/dev/null || wanted+=(python3-venv)
    [ -n "$(pg_major)" ] || wanted+=(postgresql)
    [ ${#wanted[@]} -eq 0 ] || apt_install "${wanted[@]}"
    local major
    major=$(pg_major)
    if [ ! -f "/usr/share/postgresql/$major/extension/pg_sphere.control" ]; then
        apt_install "postgresql-$major-pgsphere"
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        say "user postgres is missing (needed to run the database as non-root)"
        exit 1
    fi
}

ensure_venv() {
    local stamp="$VENV/.aiouws-installed"
    local want
    want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        say "installing Python packages into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        # types-lxml replaced lxml-stubs: both install lxml-stubs/, so drop the old one.
        "$VENV/bin/python" -m pip uninstall -q -y lxml-stubs >/dev/null 2>&1 || true
        # test: the test suite's tools; bench: the benchmarks' (scripts/bench --curves).
        "$VENV/bin/python" -m pip install -q -e "$ROOT[test,bench]"
        echo "$want" > "$stamp"
    fi
}

ensure_system
ensure_venv
