"""What the doctor finds, as plain data: rendered as a table or as JSON, and turned into an exit code."""

from dataclasses import asdict, dataclass, field
from typing import Any

from pdobs import checks
from pdobs.checks import Exit, Verdict

PASS, FAIL, NOT_APPLICABLE = "PASS", "FAIL", "N/A"
OK, INFO, WARN = "ok", "info", "warn"

# Exit codes (pdobs.checks.Exit). UNDECIDED is for NO TRAFFIC and CANNOT TELL: nothing is shown
# broken, nothing proven.
EXIT_OK, EXIT_FAILING, EXIT_BAD_INPUT, EXIT_UNDECIDED = Exit.OK, Exit.FAILING, Exit.BAD_INPUT, Exit.UNDECIDED


@dataclass
class Finding:
    """Something found before the metrics: families, versions, rules, roles, gotchas."""
    area: str  # vllm | epp | rules | roles | clusters | targets | gotcha
    level: str  # ok | info | warn
    message: str
    namespace: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Check:
    """One checklist check (a record of pdobs/checks.py) for one deployment."""
    signal: str
    title: str
    measured: str
    value: float | None
    expected: str
    status: str  # PASS | FAIL | N/A
    reason: str


@dataclass
class Deployment:
    """One namespace and model (and cluster) serving through vLLM."""
    labels: dict[str, str]
    prefill_pods: int
    decode_pods: int
    checks: list[Check]
    verdict: str
    verdict_code: int | None  # pdobs.checks.Verdict code, as the verdict signal returned it
    reason: str
    runbook: str | None
    dashboard: str
    # Why the package cannot see this deployment (no pod label, no pod with a role), or None. A
    # blind deployment is never reported OK, whatever the verdict signal says.
    blind: str | None = None

    @property
    def name(self) -> str:
        return " / ".join(self.labels.values())

    @property
    def exit_code(self) -> Exit:
        # A check whose failure is the verdict's own premise does not count (CANNOT TELL means no
        # NIXL metrics exist to show a transfer: an old vLLM must not fail CI); other failures do.
        verdict = Verdict.from_code(self.verdict_code)
        premises = {c.name for c in checks.CHECKS if verdict is not None and c.premise_of is verdict}
        if any(c.status == FAIL and c.signal not in premises for c in self.checks):
            return Exit.FAILING
        if self.blind is not None:
            return Exit.UNDECIDED
        return verdict.exit_code if verdict is not None else Exit.UNDECIDED


@dataclass
class Report:
    prometheus: str
    time: float
    server_version: str | None
    scope: dict[str, str]
    findings: list[Finding]
    deployments: list[Deployment]

    @property
    def exit_code(self) -> Exit:
        codes = {d.exit_code for d in self.deployments}
        for code in (Exit.FAILING, Exit.UNDECIDED):
            if code in codes:
                return code
        return Exit.OK

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for dep, raw in zip(self.deployments, out["deployments"], strict=True):
            raw["exit_code"] = dep.exit_code
        out["exit_code"] = self.exit_code
        return out
