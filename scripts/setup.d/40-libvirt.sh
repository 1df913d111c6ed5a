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
