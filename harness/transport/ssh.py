"""SSH transport: a fabric `Connection` behind the Transport seam.

What it guarantees:
- connect timeout (TCP connect, SSH banner, auth and channel opening all bounded by
  `target.connect_timeout`), a per-command timeout (`target.command_timeout` unless the caller gives
  one), SSH keep-alives every `target.keepalive` seconds, and `TCP_USER_TIMEOUT` (`target.link_timeout`)
  plus TCP keep-alive on the socket, so a link that silently drops every packet fails in seconds
  instead of hanging a put or a run forever;
- host keys checked against known_hosts (`target.known_hosts`, default ~/.ssh/known_hosts); an unknown
  key is refused with its SHA256 fingerprint and the fix, unless the target says
  `trust_on_first_use: true` (then it is recorded in that known_hosts file);
- every argv element is quoted with `shlex.quote`; commands run in the work dir, in a process group
  of their own with stdin at end of file (`harness.transport.groups`), output captured and a
  non-zero exit returned, not raised; a timeout or a cancellation stops the group on the device
  over a fresh channel and checks that it is gone;
- paramiko / socket failures become `InfraError` with kind unreachable / auth / timeout / hostkey and
  the phase (connect, run, push, fetch) they happened in.
"""

from __future__ import annotations

import logging
import select
import shlex
import socket
import threading
import time
from pathlib import Path

from harness.config.inventory import Target
from harness.errors import InfraError, UserError
from harness.transport import disk, groups, lock
from harness.transport.base import CommandResult

log = logging.getLogger("harness.transport.ssh")

POLL_S = 0.05
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)  # Linux value when Python lacks it
_KNOWN_HOSTS_LOCK = threading.Lock()


class UnknownHostKey(Exception):
    """Raised by the host-key policy for a key not in known_hosts (paramiko passes it through)."""

    def __init__(self, hostname: str, key_type: str, fingerprint: str, line: str) -> None:
        super().__init__(f"unknown host key for {hostname}: {key_type} {fingerprint}")
        self.hostname = hostname
        self.key_type = key_type
        self.fingerprint = fingerprint
        self.line = line


def _fingerprint(key) -> str:
    """OpenSSH-style SHA256 fingerprint of a paramiko key."""
    return key.fingerprint  # paramiko >= 3.2: "SHA256:<base64 without padding>"


def _text(data: bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


def _host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _runner_class():
    from fabric.runners import Remote

    class _NoStdinRemote(Remote):
        """fabric's Remote runner, with the remote stdin closed right after exec: a command that
        reads stdin sees EOF instead of waiting forever (we pass `in_stream=False`)."""

        def start(self, command, shell, env, timeout=None):
            super().start(command, shell, env, timeout=timeout)
            self.channel.shutdown_write()

    return _NoStdinRemote


def _policy_class():
    from paramiko.client import MissingHostKeyPolicy

    class _Policy(MissingHostKeyPolicy):
        """Refuse unknown keys with their fingerprint; trust on first use only when asked."""

        def __init__(self, name: str, tofu: bool, known_hosts: Path) -> None:
            self.name, self.tofu, self.known_hosts = name, tofu, known_hosts

        def missing_host_key(self, client, hostname, key):  # noqa: D401 (paramiko API)
            line = f"{hostname} {key.get_name()} {key.get_base64()}"
            fp = _fingerprint(key)
            if not self.tofu:
                raise UnknownHostKey(hostname, key.get_name(), fp, line)
            with _KNOWN_HOSTS_LOCK:
                self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                with open(self.known_hosts, "a", encoding="ascii") as fh:
                    fh.write(line + "\n")
            client.get_host_keys().add(hostname, key.get_name(), key)
            log.warning("%s: trusting %s host key %s on first use (added to %s)", self.name,
                        key.get_name(), fp, self.known_hosts)

    return _Policy


class SSHTransport:
    """One SSH target. Construct, then `open()` (or use `harness.transport.connect`)."""

    is_local = False

    def __init__(self, name: str, target: Target, *, base_dir: Path | None = None) -> None:
        if target.ssh is None and target.host is None:
            raise UserError(f"target {name!r} has no ssh address",
                            hint="set `ssh: user@host[:port]` (or host/port/user) in the inventory")
        self.name = name
        self.target = target
        self.base_dir = base_dir
        self.workdir = target.workdir  # made absolute by open()
        self.bytes_sent = 0
        self.host = target.host or target.ssh or ""
        self.port = target.port or 22
        self.known_hosts = self._path(target.known_hosts or "~/.ssh/known_hosts")
        self._conn = None
        self._gateway = None
        self._sftp = None
        self.cancel: threading.Event | None = None  # polled while a command runs

    # ------------------------------------------------------------------ setup
    def _path(self, value: str) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def _connection(self, address: str, *, user: str | None, port: int | None, gateway=None):
        """A fabric Connection with our host-key policy, timeouts and key settings."""
        from fabric import Config, Connection

        t = self.target
        kwargs: dict = {"banner_timeout": t.connect_timeout, "auth_timeout": t.connect_timeout,
                        "channel_timeout": t.connect_timeout}
        if t.identity_file:
            kwargs["key_filename"] = [str(self._path(t.identity_file))]
            kwargs["look_for_keys"] = False  # like IdentitiesOnly: only the named key
            kwargs["allow_agent"] = False
        config = Config()
        config.runners.remote = _runner_class()
        conn = Connection(address, user=user, port=port, config=config,
                          connect_timeout=max(1, round(t.connect_timeout)),
                          connect_kwargs=kwargs, gateway=gateway)
        client = conn.client
        if self.known_hosts.is_file():
            client.load_host_keys(str(self.known_hosts))
        system = Path("/etc/ssh/ssh_known_hosts")
        if system.is_file():
            try:
                client.load_system_host_keys(str(system))
            except OSError:
                pass
        client.set_missing_host_key_policy(
            _policy_class()(self.name, t.trust_on_first_use, self.known_hosts))
        return conn

    def _socket(self, host: str, port: int) -> socket.socket:
        """A connected TCP socket with TCP_USER_TIMEOUT and TCP keep-alive set."""
        t = self.target
        last: OSError | None = None
        for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, int(t.link_timeout * 1000))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                idle = max(1, round(t.keepalive))
                for opt, val in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", idle), ("TCP_KEEPCNT", 3)):
                    if hasattr(socket, opt):
                        sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), val)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(t.connect_timeout)
                sock.connect(addr)
                sock.settimeout(None)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError(f"no address for {host}")

    def _open_conn(self, conn) -> None:
        if not conn.gateway:
            conn.connect_kwargs["sock"] = self._socket(conn.host, int(conn.port))
        conn.open()
        transport = conn.client.get_transport()
        transport.set_keepalive(max(1, round(self.target.keepalive)))
        if conn.gateway and not isinstance(conn.gateway, str):
            gw_sock = conn.gateway.client.get_transport().sock
            if isinstance(gw_sock, socket.socket):
                gw_sock.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT,
                                   int(self.target.link_timeout * 1000))

    def open(self) -> "SSHTransport":
        """Connect, check the host key, authenticate, resolve and create the work dir."""
        t = self.target
        try:
            if t.jump:
                self._gateway = self._connection(t.jump, user=None, port=None)
                self._open_conn(self._gateway)
            self._conn = self._connection(self.host, user=t.user, port=t.port,
                                          gateway=self._gateway)
            self.host, self.port = self._conn.host, int(self._conn.port)
            self._open_conn(self._conn)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an InfraError
            self.close()
            raise self._connect_error(exc) from exc
        self.workdir = self._resolve_workdir()
        log.debug("%s: connected to %s:%s, workdir %s", self.name, self.host, self.port,
                  self.workdir)
        return self

    def _resolve_workdir(self) -> str:
        """Expand `~` on the device (quoting the rest) and create the work dir."""
        wd = self.target.workdir
        if wd == "~" or wd.startswith("~/") or not wd.startswith("/"):
            rest = wd[2:] if wd.startswith("~/") else ("" if wd == "~" else wd)
            target = '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
        else:
            target = shlex.quote(wd)
        res = self._exec(f"mkdir -p -- {target} && cd -- {target} && pwd", self.target.connect_timeout,
                         "connect")
        if not res.ok or not res.stdout.strip():
            raise InfraError(f"{self.name}: cannot create work dir {wd!r}: {res.stderr.strip()}",
                             kind="workdir", phase="connect",
                             hint=f"check `workdir` of target {self.name} and the disk of the device")
        return res.stdout.strip().splitlines()[-1]

    def _connect_error(self, exc: Exception) -> InfraError:
        import paramiko

        t, where = self.target, f"{self.host}:{self.port}"
        if isinstance(exc, InfraError):
            return exc
        if isinstance(exc, UnknownHostKey):
            host_arg = self.host
            return InfraError(
                f"{self.name}: unknown host key for {exc.hostname}: {exc.key_type} {exc.fingerprint}; "
                "refusing to connect", kind="hostkey", phase="connect",
                hint=f"if that fingerprint is the device's, add it: `ssh-keyscan -p {self.port} "
                     f"{host_arg} >> {self.known_hosts}`, or set `trust_on_first_use: true` on "
                     f"target {self.name}")
        if isinstance(exc, paramiko.BadHostKeyException):
            return InfraError(
                f"{self.name}: HOST KEY CHANGED for {where}: got {_fingerprint(exc.key)}, "
                f"known_hosts has {_fingerprint(exc.expected_key)}; refusing to connect",
                kind="hostkey", phase="connect",
                hint=f"if the device was re-installed: `ssh-keygen -R "
                     f"'{_host_pattern(self.host, self.port)}' -f {self.known_hosts}` then "
                     f"`ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts}`")
        if isinstance(exc, paramiko.AuthenticationException):
            return InfraError(f"{self.name}: authentication failed for {self._conn.user if self._conn else t.user}@{where}",
                              kind="auth", phase="connect",
                              hint=f"check `user` and `identity_file` of target {self.name} and the "
                                   "device's ~/.ssh/authorized_keys")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return InfraError(f"{self.name}: connecting to {where} timed out after "
                              f"{t.connect_timeout:g} s", kind="unreachable", phase="connect",
                              hint="is the device on and on the network? (connect_timeout)")
        if isinstance(exc, socket.gaierror):
            return InfraError(f"{self.name}: cannot resolve host {self.host!r}: {exc.strerror}",
                              kind="unreachable", phase="connect",
                              hint="check `ssh`/`host` of the target or your ~/.ssh/config")
        if isinstance(exc, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
            return InfraError(f"{self.name}: connection refused by {where}", kind="unreachable",
                              phase="connect", hint="is sshd running on the device, on that port?")
        if isinstance(exc, OSError):
            return InfraError(f"{self.name}: cannot reach {where}: {exc.strerror or exc}",
                              kind="unreachable", phase="connect")
        text = str(exc).lower()
        if isinstance(exc, paramiko.SSHException) and "banner" in text and not any(
                word in text for word in ("reset", "refused", "eof", "errno", "closed")):
            return InfraError(f"{self.name}: no SSH banner from {where} within "
                              f"{t.connect_timeout:g} s", kind="timeout", phase="connect",
                              hint="is it an SSH server? is the device overloaded?")
        if isinstance(exc, (paramiko.SSHException, EOFError)):
            return InfraError(f"{self.name}: SSH connection to {where} failed: {exc}",
                              kind="unreachable", phase="connect")
        return InfraError(f"{self.name}: connecting to {where} failed: {exc!r}",
                          kind="unreachable", phase="connect")

    # ------------------------------------------------------------------ helpers
    @property
    def is_connected(self) -> bool:
        return bool(self._conn is not None and self._conn.is_connected)

    def _lost(self, phase: str, exc: BaseException | None = None) -> InfraError:
        detail = f": {exc}" if exc is not None and str(exc) else ""
        return InfraError(f"{self.name}: connection to {self.host}:{self.port} lost during {phase}"
                          f"{detail}", kind="unreachable", phase=phase,
                          hint="the device stopped answering (powered off, network down, sshd "
                               "killed); `harness run --resume` re-runs what is missing")

    def _abs(self, remote: str) -> str:
        return remote if remote.startswith("/") else f"{self.workdir.rstrip('/')}/{remote}"

    def _exec(self, command: str, timeout: float | None, phase: str) -> CommandResult:
        import paramiko
        from invoke.exceptions import CommandTimedOut

        if self._conn is None:
            raise InfraError(f"{self.name}: not connected", kind="unreachable", phase=phase)
        timed_out = InfraError(f"{self.name}: command timed out after {timeout:g} s",
                               kind="timeout", phase=phase,
                               hint=f"raise command_timeout of target {self.name} if it is just slow")
        started = time.monotonic()
        try:
            res = self._conn.run(command, hide=True, warn=True, in_stream=False, pty=False,
                                 timeout=timeout)
        except CommandTimedOut as exc:
            raise timed_out from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(phase, exc) from exc
        if res.exited is None or res.exited == -1:
            # invoke sometimes returns (instead of raising) when it stops a timed-out command
            if timeout is not None and time.monotonic() - started >= timeout:
                raise timed_out
            if not self._alive():
                raise self._lost(phase)
            # the channel closed without an exit status: the process died from a signal that the
            # shell did not turn into 128+N (paramiko ignores "exit-signal")
            return CommandResult(-1, res.stdout, res.stderr + "\n(remote command ended without an "
                                 "exit status: killed by a signal)")
        return CommandResult(int(res.exited), res.stdout, res.stderr)

    def _alive(self) -> bool:
        """Is the SSH connection still up? One round trip (bounded by TCP_USER_TIMEOUT)."""
        transport = self._conn.client.get_transport() if self._conn is not None else None
        if transport is None or not transport.is_active():
            return False
        try:
            transport.global_request("keepalive@openssh.com", wait=True)
        except Exception:  # noqa: BLE001
            return False
        return transport.is_active()

    def _sftp_client(self, phase: str):
        import paramiko

        if self._sftp is None:
            try:
                self._sftp = self._conn.client.open_sftp()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise self._lost(phase, exc) from exc
            self._sftp.get_channel().settimeout(self.target.command_timeout)
        return self._sftp

    # ------------------------------------------------------------------ Transport
    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        """Run argv (each element quoted) in the work dir, in its own process group on the device
        (`harness.transport.groups`); a non-zero exit is returned, not raised. On a timeout or
        when `cancel` is set, the group is stopped over a fresh channel before the error."""
        if not argv:
            raise ValueError("empty argv")
        if self.cancel is not None and self.cancel.is_set():
            raise groups.interrupted_error(self.name)
        pidfile = groups.new_pidfile()
        command = (f"cd {shlex.quote(self.workdir)} && exec "
                   + " ".join(shlex.quote(a) for a in groups.wrapped(argv, pidfile)))
        return self._exec_group(command, pidfile,
                                timeout if timeout is not None else self.target.command_timeout)

    def _exec_group(self, command: str, pidfile: str, timeout: float | None) -> CommandResult:
        """Run a wrapped command on a channel of its own, polling for its end, the deadline, the
        cancellation and the link; stdin stays open (the device-side watchdog reads it)."""
        import paramiko

        phase = "run"
        transport = self._conn.client.get_transport() if self._conn is not None else None
        if transport is None or not transport.is_active():
            raise self._lost(phase)
        try:
            chan = transport.open_session(timeout=self.target.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(phase, exc) from exc
        out, err = bytearray(), bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                self._drain(chan, out, err)
                # paramiko marks a channel closed with the link as "exit status -1"
                status = chan.recv_exit_status() if chan.exit_status_ready() else -1
                if status != -1 and (chan.eof_received or chan.closed):
                    self._drain(chan, out, err)
                    return CommandResult(status, _text(out), _text(err))
                if chan.closed or not transport.is_active():
                    if not self._alive():
                        raise self._lost(phase)
                    # the channel closed without an exit status: the wrapper itself was killed
                    return CommandResult(-1, _text(out), _text(err) + "\n(remote command ended "
                                         "without an exit status: killed by a signal)")
                if self.cancel is not None and self.cancel.is_set():
                    raise self._stop(chan, pidfile, groups.interrupted_error(self.name))
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._stop(chan, pidfile, InfraError(
                        f"{self.name}: command timed out after {timeout:g} s", kind="timeout",
                        phase=phase, hint=f"raise command_timeout of target {self.name} if it "
                                          "is just slow"))
                select.select([chan], [], [], POLL_S)
        finally:
            chan.close()

    @staticmethod
    def _drain(chan, out: bytearray, err: bytearray) -> None:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)

    def _stop(self, chan, pidfile: str, error: InfraError) -> InfraError:
        """Close the command's channel, stop its process group over a fresh channel and check it
        is gone; `error`, saying how it went."""
        started = time.monotonic()
        chan.close()  # the device-side watchdog sees end of file too
        try:
            res = self._exec(f"cd {shlex.quote(self.workdir)} && sh -c "
                             f"{shlex.quote(groups.KILL_SCRIPT)} sh {shlex.quote(pidfile)} "
                             f"{groups.GRACE_S}", groups.GRACE_S + 15, "kill")
            verdict = res.stdout.strip()
        except InfraError as exc:
            verdict = f"unknown ({exc})"
        seconds = time.monotonic() - started
        if verdict.startswith("gone"):
            log.info("%s: stopped the command's process group on the device in %.2f s",
                     self.name, seconds)
            error.message += f"; its process group on the device was stopped ({seconds:.1f} s)"
        else:
            log.error("%s: the command's process group on the device was not stopped: %s",
                      self.name, verdict)
            error.message += f"; its process group on the device is NOT stopped: {verdict}"
        return error

    def put(self, local: Path, remote: str) -> None:
        """Copy a local file to `remote` (relative to the work dir); parents are created."""
        import paramiko

        path = self._abs(remote)
        sftp = self._sftp_client("push")
        size = Path(local).stat().st_size
        try:
            try:
                sftp.put(str(local), path, confirm=True)
            except FileNotFoundError:
                parent = path.rsplit("/", 1)[0] or "/"
                mk = self._exec(f"mkdir -p -- {shlex.quote(parent)}", self.target.connect_timeout,
                                "push")
                if not mk.ok:
                    raise InfraError(f"{self.name}: cannot create {parent}: {mk.stderr.strip()}",
                                     kind="workdir", phase="push")
                sftp.put(str(local), path, confirm=True)
        except InfraError:
            raise
        except PermissionError as exc:
            raise InfraError(f"{self.name}: permission denied writing {path}", kind="workdir",
                             phase="push") from exc
        except (paramiko.SSHException, EOFError, OSError, socket.timeout) as exc:
            self._sftp = None
            raise self._write_error(path, size, exc) from exc
        self.bytes_sent += size

    def _write_error(self, path: str, size: int, exc: BaseException) -> InfraError:
        """Why a put failed: the link, a full disk on the device (SFTP just says "Failure"), or
        the device refusing the write. A partial file is removed."""
        if not self._alive():
            return self._lost("push", exc)
        self._exec(f"rm -f -- {shlex.quote(path)}", self.target.connect_timeout, "push")
        full = disk.full_disk_error(self, path, size, str(exc))
        if full is not None:
            return full
        return InfraError(f"{self.name}: cannot write {path} on {self.host}: {exc}",
                          kind="workdir", phase="push",
                          hint=f"check `workdir` of target {self.name} and the device's disk")

    def get(self, remote: str, local: Path) -> None:
        """Copy `remote` (relative to the work dir) to a local file. A missing file raises
        FileNotFoundError, like the local transport."""
        import paramiko

        path = self._abs(remote)
        sftp = self._sftp_client("fetch")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        try:
            sftp.get(path, str(local))
        except FileNotFoundError:
            raise
        except (paramiko.SSHException, EOFError, OSError, socket.timeout) as exc:
            self._sftp = None
            raise self._lost("fetch", exc) from exc

    @property
    def lock_key(self) -> tuple[str, int, str]:
        """What identifies this device for the device lock."""
        return (self.host, self.port, self.workdir)

    def hold_lock(self, path: str, info: str, timeout: float,
                  cancel: threading.Event | None) -> lock.ChannelHold:
        """Take the device lock (`harness.transport.lock`): its holder runs on the device, on a
        connection of its own, so it outlives no controller and no other channel's trouble."""
        import paramiko

        holder = SSHTransport(self.name, self.target, base_dir=self.base_dir).open()
        command = (f"cd {shlex.quote(self.workdir)} && exec "
                   + " ".join(shlex.quote(str(a)) for a in (
                       self.target.python_exe, "-c", lock.LOCK_SCRIPT, path, info, timeout,
                       lock.STALE_S)))
        try:
            chan = holder._conn.client.get_transport().open_session(
                timeout=self.target.connect_timeout)
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            holder.close()
            raise holder._lost("lock", exc) from exc
        return lock.hold_on_channel(self.name, chan, holder.close, timeout, cancel)

    def close(self) -> None:
        """Close the SFTP session, the connection and the jump connection (never raises)."""
        for closer in (self._sftp, self._conn, self._gateway):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001
                    pass
        self._sftp = None

    def __enter__(self) -> "SSHTransport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SSHTransport {self.name} {self.host}:{self.port} {self.workdir}>"
