"""How to start the Alertmanager in .tools/bin.

Debian's build reads its default notification templates from /usr/share/prometheus/alertmanager
at start-up instead of embedding them, and there is no flag to point it elsewhere. The installer
keeps the package's copy in .tools/share; when the host lacks the system path, the command below
runs Alertmanager in a private mount namespace where a read-only overlay adds our copy under
/usr/share. Nothing on the host is written or mounted outside that namespace.
"""

import os
import shlex
import shutil
from pathlib import Path

from pdobs.core import paths
from pdobs.servers import tools

SYSTEM_TEMPLATES = Path("/usr/share/prometheus/alertmanager")
OUR_SHARE = paths.TOOLS_DIR / "share"


class AlertmanagerLaunchError(RuntimeError):
    """Alertmanager cannot be started on this host; the message says why."""


def command(args: list[str]) -> list[str]:
    """argv that starts .tools/bin/alertmanager with `args`, templates in place."""
    binary = str(tools.tool_path("alertmanager"))
    if (SYSTEM_TEMPLATES / "default.tmpl").is_file() or not (OUR_SHARE / "prometheus").is_dir():
        # An upstream build embeds its templates; a host with the package has them in place.
        return [binary, *args]
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AlertmanagerLaunchError(
            "Debian's alertmanager needs /usr/share/prometheus/alertmanager/default.tmpl and "
            "`unshare` (util-linux) is missing to mount it privately; install util-linux"
        )
    script = (f"mount -t overlay overlay -o lowerdir={shlex.quote(str(OUR_SHARE))}:/usr/share /usr/share"
              ' && exec "$0" "$@"')
    # As root a mount namespace is enough; otherwise a user namespace maps us to root in it.
    ns = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    return [unshare, *ns, "sh", "-c", script, binary, *args]
