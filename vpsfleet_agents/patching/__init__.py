"""Security patching on managed guests (M14, M15): the notice mailed before a reboot or a
service restart (`notice`, installed by role patching) and the list of pending security updates
(`security_pending`, run by playbooks/security-notice.yml)."""
