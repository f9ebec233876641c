#!/usr/bin/env bash
# Installs SoftHSM2, the software PKCS#11 token that tufa-pkcs11's tests sign with.
# For a fresh Debian bookworm machine, run as root (or with sudo available). The PKCS#11 tests
# run it themselves on first use when SoftHSM2 is missing (tufa-testkit's softhsm_module).
#
# Installs the package and nothing else: no token, no config. The tests make their own
# tokens in temporary directories through SOFTHSM2_CONF and never touch /etc/softhsm or
# /var/lib/softhsm. The module is looked for at /usr/lib/softhsm/libsofthsm2.so (Debian) and a
# few other usual places; set TUFA_PKCS11_MODULE to use another one.
set -euo pipefail

# SOFTHSM_SETUP_NONINTERACTIVE=1 (set by the tests, which install SoftHSM2 on first use): a
# sudo that would ask for a password fails at once instead of waiting for one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif ! command -v sudo >/dev/null 2>&1; then
    echo "error: installing softhsm2 needs root, and sudo is not installed: run this script as root" >&2
    return 1
  elif [ "${SOFTHSM_SETUP_NONINTERACTIVE:-}" = 1 ]; then
    sudo -n "$@"
  else
    sudo "$@"
  fi
}

installed() {
  dpkg-query -W -f='${Status}' softhsm2 2>/dev/null | grep -q 'install ok installed'
}

if installed && command -v softhsm2-util >/dev/null 2>&1; then
  echo "softhsm2 is installed: $(softhsm2-util --version)"
else
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when they do not know the package (a fresh machine), or
  # when installing from them fails (stale lists).
  if ! apt-cache show softhsm2 >/dev/null 2>&1; then
    as_root apt-get update
  fi
  if ! as_root apt-get install -y --no-install-recommends softhsm2; then
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends softhsm2
  fi
  echo "installed softhsm2 $(softhsm2-util --version)"
fi

module="${TUFA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
if [ ! -f "$module" ]; then
  echo "error: PKCS#11 module $module not found after installing softhsm2" >&2
  exit 1
fi
echo "PKCS#11 module: $module"
