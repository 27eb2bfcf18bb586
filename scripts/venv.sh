# Sourced by the other scripts: make sure .venv exists, creating it with python3.
# Debian's own python3 ships venv without ensurepip until python3-venv is installed,
# so that package is installed when needed (as root, or with sudo).
ensure_venv() {
    if [ -x .venv/bin/python ]; then return 0; fi
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        echo "python3 -m venv failed; installing Debian's python3-venv" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip
}
