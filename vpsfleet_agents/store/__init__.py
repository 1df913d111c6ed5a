"""The backup store's daily jobs (issue 6, promises M11, M18-M24), built into the program
`vpsfleet-backup-store` (entry `vpsfleet_agents.store.cli:main`, installed by role backup_store).

Folder and file names in the store's tree are written by the tenants (a guest's account writes
its folder): each tenant's step runs on its own, never follows a symbolic link, and reports what
it cannot use for that tenant only. The retention rule is the guests' own
(`vpsfleet_agents.backup.sets`), so that the store and the guests never disagree on it.
"""
