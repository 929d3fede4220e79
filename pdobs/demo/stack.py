"""The demo's running parts, all on 127.0.0.1, all owned by one temporary folder.

    with Stack.start(cfg, scenario, workdir) as stack:
        stack.endpoint.switch(faulty, at_minute=10)

The build is rendered from the demo's config into `workdir/build`; Prometheus scrapes the
simulator's live endpoint and loads the built rules; Alertmanager runs the built routing; its
PagerDuty and Slack URLs point at local stand-ins. Leaving the `with` block stops every process
and thread it started, whatever happened, in reverse order of starting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdobs import output
from pdobs.build import make
from pdobs.core import yamlio
from pdobs.servers.alertmanager import AlertmanagerServer
from pdobs.servers.prometheus import PrometheusServer
from pdobs.servers.receivers import Receiver
from simulator.render_live import LiveEndpoint
from simulator.scenarios import Scenario

Config = dict[str, Any]
# Events API v2 routing keys are 32 characters; this one goes only to the local stand-in.
ROUTING_KEY = "pdobsdemo0routingkey000000000000"
RULE_FILES = ("prometheus/recording-rules.yaml", "prometheus/alerts.yaml")
ALERTMANAGER_FILE = "alertmanager/alertmanager.yaml"
# The simulator plays this many simulated seconds per wall-clock second (demo.yaml matches it).
SPEED = 60.0
STEP_S = 15.0


def receiver_overrides(receiver: Receiver, secrets: Path) -> Config:
    """Config that points the generated Alertmanager routing at the local stand-ins. The secrets
    are files, as in production, so the config itself holds none."""
    secrets.mkdir(parents=True, exist_ok=True)
    key_file, url_file = secrets / "pagerduty-routing-key", secrets / "slack-webhook-url"
    key_file.write_text(ROUTING_KEY + "\n")
    url_file.write_text(receiver.slack_url + "\n")
    return {"alertmanager": {"pagerduty": {"routing_key_file": str(key_file), "url": receiver.pagerduty_url},
                             "slack": {"api_url_file": str(url_file)}}}


@dataclass
class Stack:
    cfg: Config
    workdir: Path
    receiver: Receiver
    alertmanager: AlertmanagerServer
    endpoint: LiveEndpoint
    prometheus: PrometheusServer
    config_file: Path
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def build_dir(self) -> Path:
        return self.workdir / "build"

    @classmethod
    @contextlib.contextmanager
    def start(cls, load_config: Callable[[Config], Config], healthy: Scenario, faulty: Scenario, workdir: Path,
              on_step: Callable[[str], None] = lambda _: None) -> Iterator[Stack]:
        """`load_config(overrides)` gives the demo's config with the receivers' settings merged in.
        The endpoint plays `healthy` until the caller switches it to `faulty`."""
        with contextlib.ExitStack() as stops:
            receiver = Receiver()
            stops.callback(receiver.stop)
            on_step(f"PagerDuty (Events API v2) and Slack webhook stand-ins on {receiver.url}")

            cfg = load_config(receiver_overrides(receiver, workdir / "secrets"))
            config_file = workdir / "demo-config.yaml"
            config_file.write_text("# The demo's whole config (defaults, your --config, pdobs/demo/demo.yaml, "
                                   "local receivers)\n" + yamlio.dump(cfg))
            build = workdir / "build"
            output.write_tree(build, make.build(cfg))
            on_step(f"rendered the build with the demo config into {build}")

            alertmanager = AlertmanagerServer(build / ALERTMANAGER_FILE, workdir / "alertmanager")
            stops.callback(alertmanager.stop)
            alertmanager.start()
            on_step(f"Alertmanager {alertmanager.url} with {ALERTMANAGER_FILE}")

            # Scrape jobs for every pod the fault scenario ever has (it holds the healthy phase too).
            endpoint = LiveEndpoint(faulty, speed=SPEED, step_s=STEP_S)
            stops.callback(endpoint.stop)
            endpoint.start()
            scrape_configs = endpoint.scrape_configs(scrape_interval_s=1.0)
            endpoint.switch(healthy)
            on_step(f"simulated deployment serving /metrics per pod on {endpoint.url}")

            prom = cfg["prometheus"]
            prometheus = PrometheusServer(
                rule_files=[build / f for f in RULE_FILES], evaluation_interval=prom["evaluation_interval"],
                scrape_interval=prom["scrape_interval"],
                scrape_configs=scrape_configs,
                alertmanager_url=alertmanager.url, workdir=workdir / "prometheus", retention="1d")
            stops.callback(prometheus.stop)
            prometheus.start()
            on_step(f"Prometheus {prometheus.url} scraping it every {prom['scrape_interval']}, "
                    f"with {' and '.join(RULE_FILES)}")
            yield cls(cfg, workdir, receiver, alertmanager, endpoint, prometheus, config_file)
