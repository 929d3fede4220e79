"""Recording rules: every catalog signal that has a record name, grouped so no rule reads a later
group. The definitions are in pdobs/signals/ (README.md here says how they are named and grouped)."""
