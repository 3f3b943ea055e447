#!/usr/bin/env bash
# Shared by scripts/demo and scripts/test: checks for root and installs the Debian
# packages named in "$@" when a command they provide is missing.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "redha: $1 needs root (network namespaces, raw sockets): run it as root, or with sudo" >&2
        exit 1
    fi
}

# ensure COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing.
ensure() {
    local cmd=$1 pkg=$2
    if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ]; then
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "redha: '$cmd' is missing; install the package that provides it ($pkg on Debian)" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        echo "redha: updating the package lists" >&2
        apt-get update -qq
        APT_UPDATED=1
    fi
    echo "redha: installing $pkg (for $cmd)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
}

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "redha: cargo is missing: install Rust (https://rustup.rs) first" >&2
        exit 1
    fi
}
