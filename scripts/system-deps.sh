#!/usr/bin/env bash
# Install the Debian packages bmcnn-hw needs (ngspice shared library, Icarus Verilog, and for
# `bmcnn-hw ppa` Yosys, OpenSTA and the OSU 0.18 um standard cells).
# As root: installs them with apt-get. Otherwise: prints one line saying what to install.
set -euo pipefail
packages=(ngspice libngspice0 libngspice0-dev iverilog yosys opensta qflow-tech-osu018)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "bmcnn-hw needs system packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
