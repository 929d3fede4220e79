"""How to start the Alertmanager in .tools/bin.

Debian's build reads its default notification templates from /usr/share/prometheus/alertmanager
at start-up instead of embedding them, and there is no flag to point it elsewhere. The installer
keeps the package's copy in .tools/share; when the host lacks the system path, the command below
runs Alertmanager in a private mount namespace where a read-only overlay adds our copy under
/usr/share. Nothing on the host is written or mounted outside that namespace.
"""

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from pdobs.core import paths
from pdobs.servers import tools
from pdobs.servers.prometheus import free_port

SYSTEM_TEMPLATES = Path("/usr/share/prometheus/alertmanager")


def _our_share() -> Path:
    return paths.tools_dir() / "share"


class AlertmanagerLaunchError(RuntimeError):
    """Alertmanager cannot be started on this host; the message says why."""


def command(args: list[str]) -> list[str]:
    """argv that starts .tools/bin/alertmanager with `args`, templates in place."""
    binary = str(tools.tool_path("alertmanager"))
    share = _our_share()
    if (SYSTEM_TEMPLATES / "default.tmpl").is_file() or not (share / "prometheus").is_dir():
        # An upstream build embeds its templates; a host with the package has them in place.
        return [binary, *args]
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AlertmanagerLaunchError(
            "Debian's alertmanager needs /usr/share/prometheus/alertmanager/default.tmpl and "
            "`unshare` (util-linux) is missing to mount it privately; install util-linux"
        )
    script = (f"mount -t overlay overlay -o lowerdir={shlex.quote(str(share))}:/usr/share /usr/share"
              ' && exec "$0" "$@"')
    # As root a mount namespace is enough; otherwise a user namespace maps us to root in it.
    ns = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    return [unshare, *ns, "sh", "-c", script, binary, *args]


class AlertmanagerServer:
    """A real Alertmanager on 127.0.0.1 (free port) with the given config file; `stop()` always
    ends it (SIGTERM, then SIGKILL after a timeout)."""

    def __init__(self, config_file: Path, workdir: Path, ready_timeout_s: float = 30.0) -> None:
        self.config_file = config_file
        self.workdir = workdir
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.log_path = workdir / "alertmanager.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AlertmanagerServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = command([
            f"--config.file={self.config_file}", f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"])
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AlertmanagerLaunchError(f"alertmanager exited with {self._proc.returncode} while starting: "
                                              f"{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if self._session.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise AlertmanagerLaunchError(f"alertmanager not ready after {self.ready_timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except FileNotFoundError:
            return ""

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: every alert it holds, with status.state (active, suppressed) and
        status.inhibitedBy."""
        return list(self._session.get(f"{self.url}/api/v2/alerts", timeout=5).json())

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._session.close()

    def __enter__(self) -> "AlertmanagerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
