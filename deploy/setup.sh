#!/usr/bin/env bash
# Sets up everything the gateway (and, with --test, its test suite) needs on a fresh machine:
# a virtual environment in .venv with the Python packages, and, when running as root, the
# Debian packages the tests use as real peers (dcmtk, Orthanc with DICOMweb, dicom3tools,
# stunnel, Tesseract, PostgreSQL, chromium).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
apt_packages=()
if [[ "${1:-}" == "--test" ]]; then
    extras="[test]"
    command -v storescu >/dev/null || apt_packages+=(dcmtk)
    command -v Orthanc >/dev/null || [[ -x /usr/sbin/Orthanc ]] || apt_packages+=(orthanc)
    [[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]] || apt_packages+=(orthanc-dicomweb)
    command -v dciodvfy >/dev/null || apt_packages+=(dicom3tools)
    # Orthanc's own HTTPS (civetweb) crashes with Debian 12's OpenSSL 3: the HTTPS tests put
    # stunnel in front of it, as a site would put a TLS-terminating proxy.
    command -v stunnel4 >/dev/null || apt_packages+=(stunnel4)
    command -v tesseract >/dev/null || apt_packages+=(tesseract-ocr)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_packages+=(postgresql)
    # The console's browser tests drive Debian's chromium through Playwright (no browser download).
    [[ -x /usr/bin/chromium ]] || apt_packages+=(chromium)
    # The fonts the text model was trained and is tested with (see models/weights/MODEL_CARD.md).
    for font in fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf \
                fonts-noto-mono fonts-inconsolata fonts-terminus-otb fonts-urw-base35 fonts-croscore \
                fonts-crosextra-carlito fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-cantarell \
                fonts-hack fonts-ocr-a fonts-ocr-b fonts-go fonts-firacode fonts-jetbrains-mono \
                fonts-anonymous-pro fonts-unifont fonts-courier-prime fonts-oxygen fonts-sil-andika \
                fonts-b612 fonts-agave fonts-spleen fonts-linuxlibertine; do
        dpkg -s "$font" >/dev/null 2>&1 || apt_packages+=("$font")
    done
fi

if (( ${#apt_packages[@]} )); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: installing Debian packages: ${apt_packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
        # Debian starts Orthanc as a service on install; the tests run their own.
        service orthanc stop >/dev/null 2>&1 || true
        service postgresql stop >/dev/null 2>&1 || true
    else
        echo "setup: not root, so not installing ${apt_packages[*]}; tests needing them will skip" >&2
    fi
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
stamp=.venv/.installed${extras}
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "setup: installing Python packages into .venv"
    # torch is pinned in the same command so pip takes the local CPU build.
    .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0 -e ".${extras}"
    touch "$stamp"
fi
