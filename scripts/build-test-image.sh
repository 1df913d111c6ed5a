#!/usr/bin/env bash
# Builds the test image every Molecule scenario and the lab run: Debian 12 with systemd as PID 1,
# python3, openssh-server and sudo, plus the packages our roles install (so that a test converges
# in seconds instead of downloading them for every container). There is no image registry here,
# so it is made with debootstrap from the Debian mirror apt already uses and `podman import`ed.
#
# Cached: the image is tagged with the hash of its recipe (this file and the mirror), and rebuilt
# only when that changes. `localhost/vpsfleet-debian12:latest` always names the current build.
# Usage: scripts/build-test-image.sh [--force]   (prints the image name on its last line)
set -euo pipefail
name=localhost/vpsfleet-debian12
suite=bookworm

# The mirror apt already uses on this machine (deb822 first, then the one-line format).
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
if [[ -z "$mirror" ]]; then
  mirror="$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
security="${mirror%/debian}/debian-security"

# What the guests need (systemd, ssh, python for Ansible) and what our roles install on them.
packages=(
  systemd systemd-sysv dbus libpam-systemd
  python3 python3-apt sudo openssh-server openssh-client
  iproute2 iputils-ping ca-certificates openssl procps less curl
  locales tzdata systemd-timesyncd
  rsyslog rsyslog-relp logrotate
  postfix libsasl2-modules bsd-mailx
  prometheus-node-exporter nftables
  python3-aiosmtpd python3-prometheus-client
  lftp pigz zstd mariadb-server mariadb-client python3-pymysql
  proftpd-core proftpd-mod-crypto
  prometheus prometheus-alertmanager prometheus-blackbox-exporter
  nmap python3-defusedxml
  lighttpd
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients python3-libvirt
  qemu-system-x86 qemu-utils iptables ebtables
)

recipe_hash="$( { cat "$0"; echo "$mirror"; } | sha256sum | cut -c1-12)"
image="$name:$recipe_hash"
if [[ "${1:-}" != "--force" ]] && podman image exists "$image"; then
  podman tag "$image" "$name:latest"
  echo "test image up to date: $image" >&2
  echo "$image"
  exit 0
fi

work="$(mktemp -d /var/tmp/vpsfleet-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
start=$SECONDS
echo "building $image from $mirror (debootstrap $suite)..." >&2
# postfix asks how to configure itself: role guest_base writes its configuration.
mkdir -p "$root/var/cache/debconf"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log" >&2
  exit 1
}

# apt sources like the host's, and their lists kept so that a role's apt task works offline.
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$root/etc/apt/sources.list"
chroot "$root" apt-get update -qq >/dev/null 2>&1 || echo "warning: apt-get update in the image failed" >&2
# cloud-init after debootstrap: its Python dependencies fail debootstrap's own configure pass.
mount -t proc proc "$root/proc"
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
  cloud-init >"$work/cloud-init.log" 2>&1 || { umount "$root/proc"; tail -n 30 "$work/cloud-init.log" >&2; exit 1; }
umount "$root/proc"

# A container starts as a fresh machine: its own machine id and its own SSH host keys.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/10-host-keys.conf" <<'UNIT'
# The image ships no host keys: each container makes its own before sshd checks its config.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
# cloud-init reads a NoCloud seed folder when the lab or the site scenario mounts one (what a
# VPS's seed disk gives it); without one it finds no datasource and stays off, so the other
# scenarios boot as before. Two local datasources: with a single entry ds-identify enables
# cloud-init unconditionally (it then runs with no data), and Debian's default list probes the
# network's metadata services.
cat >"$root/etc/cloud/cloud.cfg.d/90-vpsfleet-nocloud.cfg" <<'CFG'
datasource_list: [NoCloud, ConfigDrive]
CFG
# Units that make no sense in a container, or that would slow its start.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
  systemd-udev-trigger.service systemd-modules-load.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# postfix has no configuration until role guest_base writes one.
chroot "$root" systemctl disable postfix.service >/dev/null 2>&1 || true
# The database and FTP servers are there for the guests and stores that use them (their roles or
# scenarios enable them); every other container boots without their cost.
chroot "$root" systemctl disable mariadb.service proftpd.service >/dev/null 2>&1 || true
# The lab's apt repository serves with lighttpd (role lab_apt_repo runs its own unit).
chroot "$root" systemctl disable lighttpd.service >/dev/null 2>&1 || true
# Likewise the monitor's Prometheus, Alertmanager and blackbox exporter (role monitor enables them).
chroot "$root" systemctl disable prometheus.service prometheus-alertmanager.service \
  prometheus-blackbox-exporter.service >/dev/null 2>&1 || true
# Likewise libvirt (role hypervisor enables it and sets its networks): its daemons and sockets.
chroot "$root" systemctl disable libvirtd.service libvirtd.socket libvirtd-ro.socket \
  libvirtd-admin.socket virtlogd.socket virtlogd-admin.socket virtlockd.socket \
  virtlockd-admin.socket libvirt-guests.service >/dev/null 2>&1 || true
# root's user manager (user@0) lingers. On this machine's cgroup v1, systemd inside a container
# is never told that a unit's cgroup emptied, so stopping user@0 after root's last SSH session
# waits out its whole 120 s timeout, and a new SSH session waits behind it in pam_systemd: that
# stalled the lab's playbooks after every 2 min of idleness on a host (ControlPersist). A VM
# stops it at once; lingering keeps the manager up, as after that stop and the next login.
mkdir -p "$root/var/lib/systemd/linger"
: >"$root/var/lib/systemd/linger/root"
# The same lost notice makes a reboot or poweroff wait those 120 s for the lingering user@0 (a
# guest that is told to reboot would still be shutting down two minutes later); a VM stops it in
# well under a second, so 5 s is its stop timeout here.
mkdir -p "$root/etc/systemd/system/user@0.service.d"
printf '[Service]\nTimeoutStopSec=5s\n' >"$root/etc/systemd/system/user@0.service.d/90-vpsfleet-stop.conf"
echo "en_US.UTF-8 UTF-8" >"$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null
chroot "$root" passwd -l root >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* "$root"/var/log/*.log

tar -C "$root" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --quiet - "$image" >/dev/null
podman tag "$image" "$name:latest"
echo "built $image in $((SECONDS - start)) s" >&2
echo "$image"
