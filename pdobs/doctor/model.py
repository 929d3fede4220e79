"""What the doctor finds, as plain data: rendered as a table or as JSON, and turned into an exit code."""

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, NOT_APPLICABLE = "PASS", "FAIL", "N/A"
OK, INFO, WARN = "ok", "info", "warn"

# Exit codes. UNDECIDED is for NO TRAFFIC and CANNOT TELL: nothing is shown broken, nothing proven.
EXIT_OK, EXIT_FAILING, EXIT_BAD_INPUT, EXIT_UNDECIDED = 0, 1, 2, 3
CANNOT_TELL = "CANNOT TELL"
CANNOT_TELL_CODE = 4  # checklist_signals.VERDICTS code


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
    """One of the five checklist signals for one deployment."""
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
    verdict_code: int | None
    reason: str
    runbook: str | None
    dashboard: str

    @property
    def name(self) -> str:
        return " / ".join(self.labels.values())

    @property
    def exit_code(self) -> int:
        # CANNOT TELL means no NIXL metrics exist to show a transfer: that signal's FAIL is the
        # verdict's own premise (an old vLLM must not fail CI), other failing signals still count.
        unknowable = {"nixl_transfers_absent"} if self.verdict_code == CANNOT_TELL_CODE else set()
        if self.verdict_code == 1 or any(c.status == FAIL and c.signal not in unknowable for c in self.checks):
            return EXIT_FAILING
        if self.verdict_code in (0, 2):
            return EXIT_OK
        return EXIT_UNDECIDED


@dataclass
class Report:
    prometheus: str
    time: float
    server_version: str | None
    scope: dict[str, str]
    findings: list[Finding]
    deployments: list[Deployment]

    @property
    def exit_code(self) -> int:
        codes = {d.exit_code for d in self.deployments}
        for code in (EXIT_FAILING, EXIT_UNDECIDED):
            if code in codes:
                return code
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for dep, raw in zip(self.deployments, out["deployments"], strict=True):
            raw["exit_code"] = dep.exit_code
        out["exit_code"] = self.exit_code
        return out
