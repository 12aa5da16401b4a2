"""Real OpenSSH servers for the tests: on loopback, in network namespaces, or chrooted on an arm64 root fs.

Everything (host key, client key, authorized_keys, known_hosts, config, pid file) lives in a temp dir
the caller owns. Faults are injected for real: nft rules in the server's network namespace drop all
packets (blackhole) or a random share of them (`numgen random`), `tc tbf` makes a slow link, and
`kill()` SIGKILLs the sshd listener and every session process it forked.

Network namespaces use a random 10.237.x.y/30 per host; the only addresses ever contacted are the
ones inside the namespaces these helpers create.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def have_sshd() -> bool:
    return Path(SSHD).is_file() and Path(SSH_KEYGEN).is_file()


def is_root() -> bool:
    return os.geteuid() == 0


def netns_unavailable() -> str | None:
    """None when network namespaces + nft + tc can be used here, else why not."""
    if not is_root():
        return "needs root (network namespaces, nft, tc); CI runs as root"
    for tool in ("ip", "nft", "tc", "unshare"):
        if not shutil.which(tool):
            return f"{tool} is not installed (see .ci/setup_ssh_tests.sh)"
    return None


def keygen(path: Path, comment: str = "harness-test") -> Path:
    """An ed25519 key pair without passphrase at `path` / `path.pub`."""
    if not path.exists():
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                       check=True, capture_output=True)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Netns:
    """A network namespace joined to this one by a veth pair; fault injection with nft and tc."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"hns-{tag}"
        self.veth_host, self.veth_ns = f"hv{tag}a", f"hv{tag}b"
        used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        while True:
            base = f"10.237.{random.randrange(256)}.{random.randrange(0, 256, 4)}"
            a, b, c, d = (int(x) for x in base.split("."))
            self.host_ip, self.ip = f"{a}.{b}.{c}.{d + 1}", f"{a}.{b}.{c}.{d + 2}"
            if f" {self.host_ip}/" not in used and f" {self.ip}/" not in used:
                break
        self.created = False

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def create(self) -> "Netns":
        self._ip("netns", "add", self.name)
        self.created = True
        self._ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        self._ip("link", "set", self.veth_ns, "netns", self.name)
        self._ip("addr", "add", f"{self.host_ip}/30", "dev", self.veth_host)
        self._ip("link", "set", self.veth_host, "up")
        self.exec(["ip", "addr", "add", f"{self.ip}/30", "dev", self.veth_ns])
        self.exec(["ip", "link", "set", self.veth_ns, "up"])
        self.exec(["ip", "link", "set", "lo", "up"])
        return self

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(argv), check=True, capture_output=True, text=True,
                              input=input)

    # -- faults (all inside the namespace, on its side of the veth) --
    def _nft(self, rule: str) -> None:
        self.clear_nft()
        self.exec(["nft", "-f", "-"], input=f"""
table inet harness_fault {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname "lo" accept
    {rule}
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    {rule}
  }}
}}
""")

    def blackhole(self) -> None:
        """Drop every packet to and from the host: it goes silent, no RST, no ICMP."""
        self._nft("drop")

    def loss(self, percent: int) -> None:
        """Drop `percent` % of the packets in each direction at random."""
        self._nft(f"numgen random mod 100 < {int(percent)} drop")

    def clear_nft(self) -> None:
        subprocess.run(self.argv(["nft", "delete", "table", "inet", "harness_fault"]),
                       capture_output=True)

    def slow(self, rate: str = "1mbit", burst: str = "16kbit", latency: str = "200ms") -> None:
        """Token buckets on both ends of the veth pair: a slow link in both directions."""
        tbf = ["root", "tbf", "rate", rate, "burst", burst, "latency", latency]
        self.exec(["tc", "qdisc", "replace", "dev", self.veth_ns, *tbf])
        subprocess.run(["tc", "qdisc", "replace", "dev", self.veth_host, *tbf], check=True,
                       capture_output=True)

    def clear_tc(self) -> None:
        subprocess.run(self.argv(["tc", "qdisc", "del", "dev", self.veth_ns, "root"]),
                       capture_output=True)
        subprocess.run(["tc", "qdisc", "del", "dev", self.veth_host, "root"], capture_output=True)

    def destroy(self) -> None:
        if self.created:
            subprocess.run(["ip", "link", "del", self.veth_host], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.created = False


class SSHServer:
    """A real sshd with its own keys and config in `root`.

    listen: address to bind (127.0.0.1, or the namespace address when `netns` is given).
    chroot: an arm64 (or any) root file system to serve with ChrootDirectory; it is mounted as an
    overlay (writes go to `root/upper`) at /mnt/root inside a private mount namespace, because sshd
    refuses a chroot whose path is under a world-writable directory such as /tmp. A list of
    directories is stacked as overlay lower layers, the first on top.
    """

    def __init__(self, root: Path, *, netns: Netns | None = None, port: int | None = None,
                 chroot: Path | list[Path] | None = None, client_key: Path | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.chroot = chroot
        self.host = netns.ip if netns else "127.0.0.1"
        self.port = port or (22 if netns else free_port())
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_key = keygen(self.root / "ssh_host_ed25519_key", "harness-test-host")
        self.client_key = client_key or keygen(self.root / "id_ed25519", "harness-test-client")
        self.authorized_keys = self.root / "authorized_keys"
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = self.root / "known_hosts"
        self.trust()
        self.config = self.root / "sshd_config"
        self.pidfile = self.root / "sshd.pid"
        self.log = self.root / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self._write_config()

    # -- identity --
    @property
    def host_key_line(self) -> str:
        kind, blob = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"{host_pattern(self.host, self.port)} {kind} {blob}"

    @property
    def fingerprint(self) -> str:
        out = subprocess.run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", f"{self.host_key}.pub"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def trust(self) -> None:
        self.known_hosts.write_text(self.host_key_line + "\n")

    def untrust(self) -> None:
        self.known_hosts.write_text("")

    def _write_config(self) -> None:
        lines = [
            f"Port {self.port}", f"ListenAddress {self.host}",
            f"HostKey {self.host_key}", f"PidFile {self.pidfile}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no", "UsePAM no", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp",
            "MaxStartups 64:30:128", "MaxSessions 64", "UseDNS no", "LogLevel ERROR",
            "ClientAliveInterval 0", "X11Forwarding no", "AllowTcpForwarding yes",
            "PrintMotd no", "PrintLastLog no",
        ]
        if self.chroot is not None:
            lines.append("ChrootDirectory /mnt/root")
        self.config.write_text("\n".join(lines) + "\n")

    # -- lifecycle --
    def _argv(self) -> list[str]:
        sshd = [SSHD, "-D", "-e", "-f", str(self.config)]
        if self.chroot is None:
            if is_root():
                # bash sources ~/.bashrc for commands run by sshd; this machine's (pyenv init,
                # rehash locks) must not leak into the tests: hide it in a private mount namespace
                bashrc = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".bashrc"
                sshd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                        '[ -f "$1" ] && mount --bind /dev/null "$1"; shift; exec "$@"', "sh",
                        str(bashrc), *sshd]
            return self.netns.argv(sshd) if self.netns else sshd
        layers = self.chroot if isinstance(self.chroot, list) else [self.chroot]
        lower = ":".join(str(p) for p in layers)  # overlay: the first is the top layer
        upper, work = self.root / "upper", self.root / "ovlwork"
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        upper.chmod(0o755)
        script = (
            "set -e; hostname rpi4-emu; mount -t tmpfs -o mode=755 harness-chroot /mnt; mkdir /mnt/root; "
            f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} "
            "/mnt/root; mount --rbind /dev /mnt/root/dev; mount -t proc proc /mnt/root/proc; "
            "mount --rbind /sys /mnt/root/sys; exec \"$@\"")
        wrapped = ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script, "sh", *sshd]
        return self.netns.argv(wrapped) if self.netns else wrapped

    def start(self, timeout: float = 20.0) -> "SSHServer":
        if is_root():
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd on {self.host}:{self.port} not ready in {timeout} s: "
                           f"{self.log.read_text(errors='replace')[-2000:]}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the listener and every session process it forked (like a device dying)."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *_descendants(self.proc.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.proc = None

    def restart(self) -> "SSHServer":
        self.stop()
        return self.start()

    # -- what the harness needs to reach it --
    def inventory_entry(self, **overrides) -> dict:
        entry = {"kind": "cpu", "host": self.host, "port": self.port, "user": self.user,
                 "identity_file": str(self.client_key), "known_hosts": str(self.known_hosts),
                 "connect_timeout": 5, "command_timeout": 300, "python": "python3",
                 # the chroot has its own home; other servers share this machine's disk
                 "workdir": "~/harness-test" if self.chroot else str(self.root / "work")}
        entry.update(overrides)
        return entry

    def target(self, **overrides):
        from harness.config.inventory import Target

        return Target(**self.inventory_entry(**overrides))
