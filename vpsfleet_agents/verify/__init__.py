"""Verification of backup sets as a customer would do it (M21), run on the backup store by
`playbooks/verify-backups.yml`."""
