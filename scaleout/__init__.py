"""Scale-out: the rule files for the rulers a fleet grows into (Thanos, Mimir/Cortex, vmalert)."""
