"""`build.py push`: upload the rendered dashboards to Grafana over its HTTP API.

Dashboards are rendered from the config in memory (never read from a possibly stale build/), in
their provisioning form: the datasource is the configured one, reached through the dashboard's
datasource variable. The folder is found by uid and created when missing. A dashboard that is
already identical in the target folder is not written again (no empty versions in its history); a
changed one is replaced only with --overwrite, as Grafana enforces. With --dry-run only GETs are
sent and the plan is printed.

Tested against a local server that follows Grafana's documented HTTP API
(tests/grafana_api_server.py, tests/test_grafana_push.py), not against a real Grafana.
"""

import copy
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pdobs.build import make
from pdobs.core import config
from pdobs.grafana_client import GrafanaClient, GrafanaError

Config = dict[str, Any]
TOKEN_ENV = "GRAFANA_TOKEN"
# Fields Grafana sets itself on save; they never make a dashboard "changed".
_SERVER_FIELDS = ("id", "version")


class PushUsageError(Exception):
    """Bad flags or a missing token; one line."""


@dataclass
class Outcome:
    uid: str
    state: str  # created, updated, unchanged, new, changed, failed, not attempted
    detail: str = ""
    status: int | None = None
    kind: str = "dashboard"


def read_token(token_file: Path | None, environ: Mapping[str, str] = os.environ) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise PushUsageError(f"--token-file {token_file}: cannot read it ({exc.strerror})") from exc
        if not token:
            raise PushUsageError(f"--token-file {token_file}: the file is empty; put the service-account token in it")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise PushUsageError(f"no Grafana token: set {TOKEN_ENV} or pass --token-file FILE "
                             "(a service-account token with the Editor role)")
    return token


def check_url(url: str) -> list[str]:
    """Raise on a URL requests cannot use or that carries credentials; return warnings worth printing."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise PushUsageError("--grafana-url: not a URL; expected one such as https://grafana.example.com") from None
    if parts.username is not None or parts.password is not None:
        raise PushUsageError(f"--grafana-url: credentials in the URL are refused (the command line is visible to "
                             f"every user in ps); put a service-account token in {TOKEN_ENV} or --token-file")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushUsageError(f"--grafana-url {url!r}: expected an http(s):// URL such as https://grafana.example.com")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        return [f"warning: {url} is plain http: the token crosses the network unencrypted"]
    return []


def rendered_dashboards(cfg: Config) -> dict[str, dict[str, Any]]:
    dashboards = {uid: dict(board.json) for uid, board in sorted(make.model(cfg).dashboards.items())}
    if not dashboards:
        raise PushUsageError("the build renders no dashboards; nothing to push")
    return dashboards


def payload(model: Mapping[str, Any]) -> dict[str, Any]:
    """What goes into POST /api/dashboards/db: `id` null (Grafana finds it by uid) and no version,
    so replacing an existing dashboard needs overwrite=true."""
    body = copy.deepcopy(dict(model))
    body["id"] = None
    body.pop("version", None)
    return body


def differences(existing: Mapping[str, Any] | None, model: Mapping[str, Any], folder_uid: str) -> list[str] | None:
    """None when Grafana has no such dashboard, else the top-level fields that differ ([] = unchanged)."""
    if existing is None:
        return None
    stored = existing.get("dashboard", {})
    keys = sorted((set(stored) | set(model)) - set(_SERVER_FIELDS))
    changed = [k for k in keys if stored.get(k) != model.get(k)]
    if existing.get("meta", {}).get("folderUid", "") != folder_uid:
        changed.append("folder")
    return changed


@dataclass
class Push:
    client: GrafanaClient
    folder_uid: str
    folder_title: str
    overwrite: bool
    dry_run: bool
    message: str
    out: TextIO | None = None  # None: sys.stdout at the time of printing

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout)

    def folder(self) -> None:
        if self.client.get_folder(self.folder_uid) is not None:
            self.say(f"folder {self.folder_uid} ({self.folder_title}): exists")
        elif self.dry_run:
            self.say(f"folder {self.folder_uid} ({self.folder_title}): missing, would be created")
        else:
            self.client.create_folder(self.folder_uid, self.folder_title)
            self.say(f"folder {self.folder_uid} ({self.folder_title}): created")

    def dashboard(self, uid: str, model: Mapping[str, Any]) -> Outcome:
        body = payload(model)
        existing = self.client.get_dashboard(uid)
        diff = differences(existing, body, self.folder_uid)
        if diff == []:
            return Outcome(uid, "unchanged", "identical in Grafana, not written")
        if self.dry_run:
            if diff is None:
                return Outcome(uid, "new", "would be created")
            what = f"differs in {', '.join(diff)}"
            return Outcome(uid, "changed", f"{what}, would be overwritten" if self.overwrite
                           else f"{what}; needs --overwrite to be replaced")
        before = _version(existing)
        confirmed: list[str] = []

        def landed() -> dict[str, Any] | None:
            """After an ambiguous answer: saved iff Grafana now holds our content under a new version."""
            stored = self.client.get_dashboard(uid)
            if stored is None or differences(stored, body, self.folder_uid) != [] or _version(stored) == before:
                return None
            confirmed.append("confirmed by reading it back after an ambiguous answer")
            return {"version": _version(stored), "url": stored.get("meta", {}).get("url", "")}

        saved = self.client.save_dashboard(body, self.folder_uid, self.overwrite, self.message, landed)
        detail = ", ".join(str(p) for p in (f"version {saved.get('version', '?')}", saved.get("url", ""), *confirmed)
                           if p)
        return Outcome(uid, "created" if diff is None else "updated", detail)

    def run(self, dashboards: Mapping[str, Mapping[str, Any]]) -> list[Outcome]:
        if self.dry_run:
            self.say("dry run: only reading from Grafana, nothing is written")
        outcomes: list[Outcome] = []
        pending = list(dashboards)
        try:
            self.folder()
        except GrafanaError as exc:
            return [Outcome(self.folder_uid, "failed", str(exc), exc.status, kind="folder"),
                    *(Outcome(uid, "not attempted", "the folder step failed") for uid in pending)]
        while pending:
            uid = pending.pop(0)
            try:
                outcome = self.dashboard(uid, dashboards[uid])
            except GrafanaError as exc:
                outcomes.append(Outcome(uid, "failed", str(exc), exc.status))
                if exc.fatal:
                    outcomes += [Outcome(u, "not attempted", "stopped after the error above") for u in pending]
                    pending = []
                continue
            outcomes.append(outcome)
            self.say(f"{uid}: {outcome.state}, {outcome.detail}")
        return outcomes


def _version(found: Mapping[str, Any] | None) -> Any:
    if found is None:
        return None
    dash = found.get("dashboard")
    return dash.get("version") if isinstance(dash, dict) else None


def summarize(outcomes: list[Outcome], err: TextIO | None = None, out: TextIO | None = None) -> int:
    """Print which dashboards succeeded and which did not; the exit code (0, 2 for a 4xx, else 1)."""
    err, out = err or sys.stderr, out or sys.stdout
    for o in outcomes:
        if o.state in ("failed", "not attempted"):
            print(f"error: {o.kind} {o.uid}: {o.state}: {o.detail}", file=err)
    dashboards = [o for o in outcomes if o.kind == "dashboard"]
    bad = [o for o in dashboards if o.state in ("failed", "not attempted")]
    good = [o for o in dashboards if o not in bad]
    if not bad:
        print(f"done: {len(good)} dashboards ({', '.join(f'{o.uid} {o.state}' for o in good)})", file=out)
        return 0
    ok = ", ".join(f"{o.uid} {o.state}" for o in good) or "none"
    print(f"error: {len(bad)} of {len(dashboards)} dashboards not pushed ({', '.join(o.uid for o in bad)}); "
          f"succeeded: {ok}", file=err)
    failed = [o for o in outcomes if o.state == "failed"]
    return 2 if all(o.status is not None and 400 <= o.status < 500 for o in failed) else 1


# --- command line -------------------------------------------------------------------------------

# Flags people reach for that would put the token in shell history and `ps`; refused unread.
REFUSED_FLAGS = ("--token", "--api-key", "--grafana-token")


def refuse_token_flags(argv: list[str]) -> None:
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in REFUSED_FLAGS:
            raise PushUsageError(f"{name}: a token is never taken on the command line; set {TOKEN_ENV} "
                                 "or pass --token-file FILE")


def add_parser(sub: Any, parents: list[Any]) -> None:
    p = sub.add_parser("push", parents=parents, help="upload the dashboards to Grafana over its HTTP API",
                       description=f"Upload the dashboards to Grafana. The token comes from ${TOKEN_ENV} "
                                   "or --token-file, never from the command line.")
    p.add_argument("--grafana-url", required=True, help="Grafana's root URL, e.g. https://grafana.example.com")
    p.add_argument("--folder-uid", help="target folder uid (default: grafana.folder.uid); created if missing")
    p.add_argument("--overwrite", action="store_true", help="replace dashboards that differ in Grafana")
    p.add_argument("--dry-run", action="store_true", help="show what would change; send only GET requests")
    p.add_argument("--message", default="Pushed by build.py push (llm-d P/D observability)",
                   help="version-history message of each written dashboard")
    p.add_argument("--ca-file", type=Path, help="CA bundle that signed Grafana's certificate")
    p.add_argument("--insecure-skip-verify", action="store_true",
                   help="do not verify Grafana's TLS certificate (not recommended)")
    p.add_argument("--token-file", type=Path, help=f"file holding the token (default: ${TOKEN_ENV})")


def command(args: Any) -> int:
    cfg = config.load(getattr(args, "config", None))
    for warning in check_url(args.grafana_url):
        print(warning, file=sys.stderr)
    token = read_token(args.token_file)
    if args.ca_file is not None and not args.ca_file.is_file():
        raise PushUsageError(f"--ca-file {args.ca_file}: no such file")
    if args.insecure_skip_verify:
        print(f"warning: not verifying the TLS certificate of {args.grafana_url} (--insecure-skip-verify)",
              file=sys.stderr)
    dashboards = rendered_dashboards(cfg)
    settings = cfg["grafana"]["push"]
    verify: bool | str = False if args.insecure_skip_verify else str(args.ca_file) if args.ca_file else True
    client = GrafanaClient(args.grafana_url, token, verify=verify,
                           timeout=settings["timeout_seconds"], retries=settings["retries"],
                           backoff=settings["backoff_seconds"])
    folder = cfg["grafana"]["folder"]
    job = Push(client, args.folder_uid or folder["uid"], folder["title"], args.overwrite, args.dry_run, args.message)
    return summarize(job.run(dashboards))
