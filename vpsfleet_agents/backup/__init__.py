"""The nightly backup agent of a guest and its restore (promises M18-M24)."""
