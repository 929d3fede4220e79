"""Recording rules: every catalog signal that has a record name, grouped so no rule reads a later group."""
