"""Colours of the codes the catalog's status signals return (checklist_signals.NIXL_STATES, CHECK_STATES,
VERDICTS). Red only where something is broken; grey where a check does not apply."""

from dashboards.spec import NEUTRAL

NIXL_COLORS = {0: "green", 1: "red", 2: NEUTRAL, 3: NEUTRAL, 4: "orange"}
CHECK_COLORS = {0: "green", 1: "red", 2: NEUTRAL, 3: NEUTRAL}
VERDICT_COLORS = {0: "green", 1: "red", 2: NEUTRAL, 3: NEUTRAL, 4: "orange"}
