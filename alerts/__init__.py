"""Alert rules, the alert lifecycle and dispatch channels."""
