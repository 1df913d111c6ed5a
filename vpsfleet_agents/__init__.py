"""The programs vpsfleet ships to managed machines (guests, stores, monitors).

Standard library only, plus what Debian 12 packages on the machine: each entry module is built
into one executable zip file (`python -m vpsfleet.agent_build`) that the roles install, so that
nothing but Debian packages is installed on a machine. The fleet model (`vpsfleet`) is never
imported here: it does not exist on the machines.
"""
