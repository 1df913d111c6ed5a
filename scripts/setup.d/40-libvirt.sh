#!/usr/bin/env bash
# libvirt for the Pulumi tests (issue 3). The tests start their own libvirtd inside a network
# namespace; here only what Debian's libvirt-daemon-system would have done and we skip (it would
# also start a system libvirtd): the unprivileged account qemu runs as, which libvirt's qemu
# driver resolves at start-up even when qemu.conf says otherwise.
set -euo pipefail
if ! getent group libvirt-qemu >/dev/null; then
  groupadd --system libvirt-qemu
fi
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
    --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
fi
echo "  libvirt-qemu account present"

# A Debian kernel and a static busybox for the filter enforcement test's tiny VM (booted under
# qemu emulation with a busybox initramfs). Unpacked into .cache/vm, never installed, so the
# machine's own kernel and boot configuration are untouched.
vm="${VPSFLEET_ROOT:?}/.cache/vm"
kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
want="$kernel_pkg busybox-static"
if [[ -f "$vm/stamp" && "$(cat "$vm/stamp")" == "$want" && -f "$vm/vmlinuz" ]]; then
  echo "  test VM kernel present ($kernel_pkg)"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download -q "$kernel_pkg" busybox-static >/dev/null 2>&1) \
  || { apt-get update -qq && (cd "$work" && apt-get download -q "$kernel_pkg" busybox-static >/dev/null 2>&1); }
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
mkdir -p "$vm"
cp "$work"/kernel/boot/vmlinuz-* "$vm/vmlinuz"
cp "$(find "$work/kernel/lib/modules" -name e1000.ko | head -n1)" "$vm/e1000.ko"
cp "$work/busybox/bin/busybox" "$vm/busybox"
echo "$want" > "$vm/stamp"
echo "  test VM kernel unpacked in .cache/vm ($kernel_pkg)"
