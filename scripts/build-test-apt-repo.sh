#!/usr/bin/env bash
# Builds the apt repositories the patching tests serve to their guests (issue 5): tiny
# Debian-style archives of test packages, made with dpkg-deb and apt-ftparchive.
#
#   OUT/security   Release says Origin: Debian, Label: Debian-Security, Codename: bookworm-security
#                  (what unattended-upgrades must install): vpsfleet-sec-demo 1.1,
#                  vpsfleet-sec-reboot-demo 1.1 (its postinst asks for a reboot the way a kernel
#                  does), vpsfleet-sec-broken-demo 1.1 (its postinst fails: the fault test)
#   OUT/main       Release says Origin: Debian, Label: Debian, Codename: bookworm (a point
#                  release: Debian's own 50unattended-upgrades would install it, ours must not):
#                  vpsfleet-regular-demo 1.1, plus unattended-upgrades and the dependencies the
#                  test image lacks (from scripts/setup.d/60-patching.sh's cache), so that guests
#                  install everything from this repository and talk to no other host
#   OUT/base       the 1.0 of every demo package, installed by the scenario's prepare
#
# The repositories are unsigned: guests list them with [trusted=yes] (tests only).
# Usage: scripts/build-test-apt-repo.sh OUT [TOOL_DEBS_DIR]
set -euo pipefail
# dpkg-deb refuses a DEBIAN folder that is not 0755-ish: never inherit a caller's umask 077.
umask 022
out="${1:?usage: build-test-apt-repo.sh OUT [TOOL_DEBS_DIR]}"
tools="${2:-${PATCHING_TOOL_DEBS:-/var/cache/vpsfleet/patching-debs}}"
command -v apt-ftparchive >/dev/null || {
  echo "apt-ftparchive is missing: install apt-utils (scripts/setup.sh)" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out/base" "$out/security/pool" "$out/main/pool"

# build_deb NAME VERSION DEST [POSTINST_BODY]: an Architecture: all package with one file.
build_deb() {
  local name="$1" version="$2" dest="$3" postinst="${4:-}"
  local root="$work/$name-$version"
  mkdir -p "$root/DEBIAN" "$root/usr/share/vpsfleet-demo"
  echo "$version" >"$root/usr/share/vpsfleet-demo/$name.version"
  cat >"$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: vpsfleet tests <ops@test.example.net>
Section: misc
Priority: optional
Description: vpsfleet patching test package ($version)
 A package that exists only in the patching tests' apt repositories.
CONTROL
  if [[ -n "$postinst" ]]; then
    printf '#!/bin/sh\nset -e\n%s\n' "$postinst" >"$root/DEBIAN/postinst"
    chmod 0755 "$root/DEBIAN/postinst"
  fi
  dpkg-deb --root-owner-group -Zxz --build "$root" "$dest/${name}_${version}_all.deb" >/dev/null
}

# What a kernel's postinst does (Debian's /etc/kernel/postinst.d/unattended-upgrades and
# update-notifier-common): flag the reboot and say which package asked for it. Single quotes:
# "$1" is the postinst's own argument, expanded when dpkg runs it.
# shellcheck disable=SC2016
reboot_postinst='if [ "$1" = configure ]; then
  touch /var/run/reboot-required
  echo vpsfleet-sec-reboot-demo >>/var/run/reboot-required.pkgs
fi'
# shellcheck disable=SC2016
broken_postinst='if [ "$1" = configure ]; then
  echo "vpsfleet-sec-broken-demo: configuration failed on purpose (fault test)" >&2
  exit 1
fi'

for name in vpsfleet-sec-demo vpsfleet-sec-reboot-demo vpsfleet-sec-broken-demo \
  vpsfleet-regular-demo; do
  build_deb "$name" 1.0 "$out/base"
done
build_deb vpsfleet-sec-demo 1.1 "$out/security/pool"
build_deb vpsfleet-sec-reboot-demo 1.1 "$out/security/pool" "$reboot_postinst"
build_deb vpsfleet-sec-broken-demo 1.1 "$out/security/pool" "$broken_postinst"
build_deb vpsfleet-regular-demo 1.1 "$out/main/pool"
if compgen -G "$tools/*.deb" >/dev/null; then
  cp "$tools"/*.deb "$out/main/pool/"
else
  echo "warning: no tool packages in $tools (run scripts/setup.sh): guests need unattended-upgrades" >&2
fi

# index REPO SUITE LABEL: Packages and a Release whose fields unattended-upgrades matches on.
index() {
  local repo="$1" suite="$2" label="$3"
  local dist="$out/$repo/dists/$suite"
  mkdir -p "$dist/main/binary-amd64" "$dist/main/binary-all"
  (cd "$out/$repo" && apt-ftparchive packages pool) >"$dist/main/binary-amd64/Packages"
  cp "$dist/main/binary-amd64/Packages" "$dist/main/binary-all/Packages"
  gzip -9nkf "$dist/main/binary-amd64/Packages" "$dist/main/binary-all/Packages"
  apt-ftparchive \
    -o APT::FTPArchive::Release::Origin=Debian \
    -o "APT::FTPArchive::Release::Label=$label" \
    -o "APT::FTPArchive::Release::Suite=$suite" \
    -o "APT::FTPArchive::Release::Codename=$suite" \
    -o APT::FTPArchive::Release::Architectures="amd64 all" \
    -o APT::FTPArchive::Release::Components=main \
    release "$dist" >"$work/Release"
  mv "$work/Release" "$dist/Release"
}
index security bookworm-security Debian-Security
index main bookworm Debian
echo "test apt repositories in $out: $(find "$out" -name '*.deb' | wc -l) packages" >&2
