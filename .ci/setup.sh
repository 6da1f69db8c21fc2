#!/usr/bin/env bash
# Idempotent setup for the suite and the demo: Debian packages (when root), the virtualenv, the package.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite starts itself. Extend this list for new services (kannel, chromium, fonts…).
DEBIAN_PACKAGES="postgresql slapd ldap-utils chromium chromium-driver fonts-wqy-microhei wrk hey kannel kannel-extras nginx-light"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*"; }

missing_packages() {
  local package missing=""
  for package in $DEBIAN_PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $package"
    fi
  done
  echo "${missing# }"
}

if command -v dpkg-query >/dev/null 2>&1; then
  missing="$(missing_packages)"
  if [ -z "$missing" ]; then
    say "Debian packages present: $DEBIAN_PACKAGES"
  elif [ "$(id -u)" -eq 0 ]; then
    say "installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # The suite starts its own PostgreSQL, slapd, Kannel and nginx on loopback: keep the packages' system
    # services from starting (and from failing the install when port 80 or 5432 is taken).
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    # shellcheck disable=SC2086  # the list is meant to split into words
    status=0
    apt-get install -y -q $missing >/dev/null || status=$?
    if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi
    if [ "$status" -ne 0 ]; then say "apt-get install failed"; exit "$status"; fi
  else
    say "not root: cannot install missing Debian packages ($missing); their tests will be skipped"
  fi
else
  say "no dpkg: not a Debian system, skipping package installation ($DEBIAN_PACKAGES)"
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
else
  say "virtualenv $VENV exists"
fi

# Reinstall only when pyproject.toml changed since the last successful install (or never installed).
stamp="$VENV/.idbroker-install-stamp"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$VENV/bin/python" -c "import idbroker" 2>/dev/null; then
  say "idbroker already installed in $VENV (pyproject.toml unchanged)"
else
  say "installing idbroker (editable) with test dependencies into $VENV"
  log="$(mktemp)"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "pip install failed (output above)"
    exit 1
  fi
  rm -f "$log"
  echo "$wanted" >"$stamp"
fi
