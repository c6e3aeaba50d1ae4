"""Start Debian's net-snmp agent (snmpd) on a UDP loopback port; stop it by PID.

The agent serves the host's real MIB-II/HOST-RESOURCES values plus fixed test values under
``.1.3.6.1.4.1.99999`` read from a file by a ``pass`` script, so tests can set counters (and wrap them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support import stop

BINARY = shutil.which("snmpd") or "/usr/sbin/snmpd"
BASE_OID = ".1.3.6.1.4.1.99999"

_PASS_SCRIPT = """#!/bin/sh
# net-snmp pass script: values from {values} (lines: OID TYPE VALUE), GET and GETNEXT
values="{values}"
case "$1" in
  -g) line=$(grep "^$2 " "$values" | head -n1) ;;
  -n) line=$(awk -v want="$2" 'function cmp(a,b,  x,y,n,m,i){{n=split(a,x,".");m=split(b,y,".");for(i=1;i<=n&&i<=m;i++){{if(x[i]+0<y[i]+0)return -1;if(x[i]+0>y[i]+0)return 1}}return (n<m)?-1:(n>m)?1:0}} cmp($1,want)>0{{print;exit}}' "$values") ;;
  *) exit 0 ;;
esac
[ -z "$line" ] && exit 0
set -- $line
echo "$1"; echo "$2"; echo "$3"
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SnmpAgent:
    directory: Path
    port: int
    community: str = "telewatch-test"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def values_file(self) -> Path:
        return self.directory / "values.txt"

    def set_values(self, values: dict[str, tuple[str, int | str]]) -> None:
        """Serve ``{suffix: (type, value)}`` under BASE_OID (type: counter, counter64, gauge, integer)."""

        def key(item: tuple[str, tuple[str, int | str]]) -> list[int]:
            return [int(p) for p in item[0].strip(".").split(".")]

        lines = [
            f"{BASE_OID}.{suffix.strip('.')} {kind} {value}"
            for suffix, (kind, value) in sorted(values.items(), key=key)
        ]
        tmp = self.values_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.values_file)

    def start(self) -> None:
        log = (self.directory / "snmpd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                BINARY,
                "-f",
                "-Lo",
                "-C",
                "-c",
                str(self.directory / "snmpd.conf"),
                "-p",
                str(self.directory / "snmpd.pid"),
                f"udp:127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "NET-SNMP version" in (self.directory / "snmpd.log").read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(
            "snmpd did not start: " + (self.directory / "snmpd.log").read_text(errors="replace")[-2000:]
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def make_snmpd(directory: Path) -> SnmpAgent:
    directory.mkdir(parents=True, exist_ok=True)
    agent = SnmpAgent(directory=directory, port=free_udp_port())
    agent.set_values({})
    script = directory / "pass.sh"
    script.write_text(_PASS_SCRIPT.format(values=agent.values_file))
    script.chmod(0o755)
    (directory / "snmpd.conf").write_text(
        f"rocommunity {agent.community} 127.0.0.1\n"
        f"pass {BASE_OID} /bin/sh {script}\n"
        "sysLocation telewatch test rack\n"
        "sysContact ops@example.com\n"
    )
    return agent
