"""Sub-commands of `vpsfleet`: each module defines `register(subparsers)`, which adds its
commands and sets `run=<function(args) -> exit code>` on each parser."""
