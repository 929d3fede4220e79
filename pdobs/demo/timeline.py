"""What the demo prints while it runs: one time-stamped line per thing that happened.

`Watcher.poll()` reads the running stack (the recorded checklist in Prometheus, Prometheus'
alert states, what Alertmanager inhibits, what the PagerDuty and Slack stand-ins received) and
prints only what changed since the last poll, so the output reads as a timeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import requests

from pdobs import checks, signals
from pdobs.checks import CheckState, Verdict
from pdobs.demo.stack import Stack
from pdobs.servers.prometheus import PrometheusError

Config = dict[str, Any]
POLL_S = 0.5
PROGRESS_EVERY_S = 15.0


class Timeline:
    """Prints `[  12.3s] text`, seconds since the demo started, flushed at once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str, details: list[str] | tuple[str, ...] = ()) -> None:
        print(f"[{self.now():6.1f}s] {text}", file=self.out)
        for line in details:
            print(f"           {line}", file=self.out)
        self.out.flush()

    def heading(self, text: str) -> None:
        print(f"\n== {text}", file=self.out, flush=True)


def pagerduty_lines(body: dict[str, Any]) -> list[str]:
    """A PagerDuty Events v2 body as a person reads it; the routing key (a secret) is left out."""
    payload = body.get("payload", {})
    details = payload.get("custom_details", {})
    lines = [f"summary:   {payload.get('summary', '')}",
             f"severity:  {payload.get('severity', '')}   dedup_key: {body.get('dedup_key', '')}"]
    firing = str(details.get("firing") or "").strip()
    if firing:
        lines += [f"details:   {line}" for line in firing.splitlines()]
    lines += [f"link:      {link.get('text')}: {link.get('href')}" for link in body.get("links", [])]
    return lines


def slack_lines(body: dict[str, Any]) -> list[str]:
    """A Slack incoming-webhook body: channel, then each attachment's title, colour and text."""
    lines = [f"channel:   {body.get('channel', '')}"]
    for att in body.get("attachments", []):
        lines.append(f"title:     {att.get('title', '')}   (colour {att.get('color', '')})")
        lines += [f"text:      {line}" for line in str(att.get("text", "")).strip().splitlines()]
    return lines


def _key(labels: dict[str, str], ns_label: str) -> tuple[str, str]:
    return labels.get("alertname", "?"), labels.get(ns_label, "")


@dataclass
class Watcher:
    stack: Stack
    namespace: str
    timeline: Timeline
    alerts: dict[tuple[str, str], str] = field(default_factory=dict)  # (alert, ns) -> pending|firing
    ever: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # states each alert has been in
    inhibited: dict[tuple[str, str], str] = field(default_factory=dict)  # -> alert names inhibiting it
    signals: dict[str, str] = field(default_factory=dict)  # checklist signal -> PASS/FAIL/...
    verdict: str = ""
    received: int = 0
    failures: int = 0
    quiet: bool = True  # while the stack warms up, record the checklist without printing it
    changed_at: float = 0.0  # monotonic time of the last checklist change

    @property
    def cfg(self) -> Config:
        return self.stack.cfg

    def poll(self) -> None:
        try:
            self._checklist()
            self._alerts()
            self._inhibitions()
        except (PrometheusError, requests.RequestException, ValueError) as exc:
            # A slow answer on a loaded machine: say so once in a while and keep going.
            self.failures += 1
            if self.failures % 10 == 1:
                self.timeline.say(f"(a poll failed, retrying: {str(exc).splitlines()[0][:120]})")
        self._notifications()

    # --- what Prometheus records ----------------------------------------------------------------
    def _checklist(self) -> None:
        ctx = signals.context(self.cfg, scope={"namespace": ("=", self.namespace)})
        prom = self.stack.prometheus
        changed = []
        for check in checks.CHECKS:
            signal = check.name
            result = prom.query(signals.query(ctx, "checklist_status", signal=signal))
            if not result:
                continue
            code = int(float(result[0]["value"][1]))
            text = next((s.text for s in CheckState if s.code == code), "?")
            if self.signals.get(signal) != text:
                changed.append(f"{check.title}: {self.signals.get(signal, '-')} -> {text}")
                self.signals[signal] = text
        verdict = prom.query(signals.query(ctx, "verdict"))
        if verdict:
            found = Verdict.from_code(int(float(verdict[0]["value"][1])))
            text = found.text if found else "?"
            if text != self.verdict:
                changed.append(f"verdict: {self.verdict or '-'} -> {text}")
                self.verdict = text
        if changed:
            self.changed_at = time.monotonic()
            if not self.quiet:
                self.timeline.say("the recorded checklist changed (recording rules, evaluated every "
                                  f"{self.cfg['prometheus']['evaluation_interval']}):", changed)

    def checklist_lines(self) -> list[str]:
        return [f"{c.title}: {self.signals.get(c.name, '-')}" for c in checks.CHECKS] + \
               [f"verdict: {self.verdict or '-'}"]

    def settled(self, verdict: str, for_s: float) -> bool:
        """The recorded verdict reads `verdict` and nothing in the checklist changed for `for_s`."""
        return self.verdict == verdict and time.monotonic() - self.changed_at >= for_s

    def failing(self) -> list[str]:
        titles = {c.name: c.title for c in checks.CHECKS}
        return [titles.get(s, s) for s, state in self.signals.items() if state == CheckState.FAIL.text]

    def _alerts(self) -> None:
        ns_label = self.cfg["labels"]["namespace"]
        now: dict[tuple[str, str], str] = {}
        for alert in self.stack.prometheus.alerts():
            now[_key(alert["labels"], ns_label)] = alert["state"]
        if self.quiet:  # warm-up: half-filled windows, not the deployment
            self.alerts = now
            return
        for key, state in sorted(now.items()):
            if self.alerts.get(key) != state:
                before = self.alerts.get(key, "inactive")
                self.timeline.say(f"Prometheus: alert {key[0]} (namespace {key[1]}) {before} -> {state}")
                self.ever.setdefault(key, set()).add(state)
        for key in sorted(set(self.alerts) - set(now)):
            self.timeline.say(f"Prometheus: alert {key[0]} (namespace {key[1]}) {self.alerts[key]} -> inactive")
        self.alerts = now

    def alert_lines(self) -> list[str]:
        return [f"{name} (namespace {ns}): {state}" for (name, ns), state in sorted(self.alerts.items())]

    def firing(self, name: str | None = None) -> list[tuple[str, str]]:
        return [k for k, s in self.alerts.items() if s == "firing" and (name is None or k[0] == name)]

    def _inhibitions(self) -> None:
        ns_label = self.cfg["labels"]["namespace"]
        held = self.stack.alertmanager.alerts()
        names = {a["fingerprint"]: a["labels"].get("alertname", "?") for a in held}
        for alert in held:
            status = alert.get("status", {})
            by = status.get("inhibitedBy") or []
            key = _key(alert["labels"], ns_label)
            if status.get("state") == "suppressed" and by and key not in self.inhibited:
                sources = ", ".join(sorted({names.get(f, f) for f in by}))
                self.inhibited[key] = sources
                self.timeline.say(f"Alertmanager: {key[0]} (namespace {key[1]}) inhibited by {sources}: "
                                  "held back, never notified")

    # --- what the receivers got -----------------------------------------------------------------
    def _notifications(self) -> None:
        events = self.stack.receiver.snapshot()
        for path, body in events[self.received:]:
            if path.startswith("/pagerduty"):
                self.timeline.say(f"PagerDuty received an event: {body.get('event_action', '?')} "
                                  f"(POST {path}, Events API v2)", pagerduty_lines(body))
            else:
                title = (body.get("attachments") or [{}])[0].get("title", "")
                self.timeline.say(f"Slack received a message: {title} (POST {path}, incoming webhook)",
                                  slack_lines(body))
        self.received = len(events)

    def pages(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.stack.receiver.pagerduty() if e.get("event_action") == action]

    def slack_messages(self, status: str) -> list[dict[str, Any]]:
        return [m for m in self.stack.receiver.slack()
                if any(a.get("title", "").startswith(f"[{status}") for a in m.get("attachments", []))]

    def unresolved(self) -> list[str]:
        """Notified alert groups (by dedup key / title) with no resolution received yet."""
        open_pages = {e.get("dedup_key") for e in self.pages("trigger")} - {e.get("dedup_key")
                                                                            for e in self.pages("resolve")}
        def group(title: str) -> str:
            return title.split("] ", 1)[-1]
        fired = {group(a["title"]) for m in self.slack_messages("FIRING") for a in m["attachments"]}
        resolved = {group(a["title"]) for m in self.slack_messages("RESOLVED") for a in m["attachments"]}
        return [f"PagerDuty incident {k}" for k in sorted(open_pages)] + \
               [f"Slack: {g}" for g in sorted(fired - resolved)]

    def sent_text(self) -> str:
        return json.dumps([b for _, b in self.stack.receiver.snapshot()])

    def wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> bool:
        """Poll until `done()`; a progress line every 15 s; False when `timeout_s` passes first."""
        start = last = time.monotonic()
        while True:
            self.poll()
            if done():
                return True
            now = time.monotonic()
            if now - start > timeout_s:
                return False
            if now - last > PROGRESS_EVERY_S:
                self.timeline.say(f"... waiting for {what} ({now - start:.0f}s of at most {timeout_s:.0f}s)")
                last = now
            time.sleep(POLL_S)
