"""The customer notices' words, shared by the deploy (`vpsfleet.notices`) and the programs
shipped to machines: `render` and `templates/` (one template per kind and language), `message`
(the e-mail's headers and parts), `traffic` (the facts of the traffic job's throttle notice)."""
