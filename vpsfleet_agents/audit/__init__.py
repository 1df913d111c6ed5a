"""vpsfleet-audit: the forbidden-services audit run from a monitor (M29).

Scans only the fleet's own addresses (its configuration, templated from the fleet by role
`monitor`) with nmap at a bounded rate, confirms the weak cases actively (an open proxy relays to
the auditor's own canary, an IRC server greets a registration), and writes a report per customer
with the evidence and a suggested fleet edit. It never acts on its own. See
docs/forbidden-services.md.
"""
