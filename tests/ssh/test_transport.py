"""SSHTransport against a real OpenSSH server on loopback."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from harness.config.inventory import Target, load_inventory
from harness.errors import InfraError, UserError
from harness.transport import LocalTransport, connect
from harness.transport.ssh import SSHTransport


def test_run_quotes_every_argument_and_returns_exit_code(sshd):
    with connect("lo", sshd.target()) as tr:
        assert isinstance(tr, SSHTransport)
        res = tr.run(["printf", "%s|", "a b", "$(id)", "`id`", "x;y", "'q'", "*"])
        assert res.ok and res.stdout == "a b|$(id)|`id`|x;y|'q'|*|"
        assert tr.run(["sh", "-c", "echo err >&2; exit 3"]) .exit_code == 3
        assert tr.run(["pwd"]).stdout.strip() == tr.workdir
        assert tr.workdir == str(Path(sshd.root / "work").resolve())


def test_tilde_workdir_is_expanded_on_the_device(sshd):
    home = subprocess.run(["sh", "-c", "echo $HOME"], capture_output=True, text=True).stdout.strip()
    tag = sshd.root.name
    with connect("lo", sshd.target(workdir=f"~/.cache/harness-test-{tag}")) as tr:
        assert tr.workdir == f"{home}/.cache/harness-test-{tag}"
        assert Path(tr.workdir).is_dir()
    shutil.rmtree(tr.workdir)  # the work dir and what the command wrapper keeps in it


def test_put_get_roundtrip_and_missing_file(sshd, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    with connect("lo", sshd.target()) as tr:
        tr.put(src, "deep/dir/blob.bin")  # parents are created
        assert tr.bytes_sent == src.stat().st_size
        tr.get("deep/dir/blob.bin", tmp_path / "back" / "blob.bin")
        assert (tmp_path / "back" / "blob.bin").read_bytes() == src.read_bytes()
        with pytest.raises(FileNotFoundError):
            tr.get("no/such/file", tmp_path / "x")


def test_command_timeout_is_an_infra_error_and_connection_survives(sshd):
    with connect("lo", sshd.target()) as tr:
        with pytest.raises(InfraError) as info:
            tr.run(["sleep", "30"], timeout=1)
        assert info.value.kind == "timeout" and info.value.phase == "run"
        assert tr.run(["true"]).ok


def test_stdin_is_closed(sshd):
    """`in_stream=False`: a command reading stdin sees EOF at once instead of pytest's stdin."""
    with connect("lo", sshd.target()) as tr:
        res = tr.run(["sh", "-c", "cat; echo done"], timeout=20)
        assert res.stdout == "done\n"


def test_unknown_host_key_is_refused_with_fingerprint_and_fix(sshd):
    sshd.untrust()
    with pytest.raises(InfraError) as info:
        connect("lo", sshd.target())
    err = info.value
    assert err.kind == "hostkey" and err.phase == "connect"
    assert sshd.fingerprint in err.message  # same SHA256 fingerprint as ssh-keygen -l
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1" in err.hint
    assert "trust_on_first_use: true" in err.hint
    assert sshd.known_hosts.read_text() == ""  # nothing was trusted behind our back


def test_keyscan_fix_from_the_hint_works(sshd):
    sshd.untrust()
    scan = subprocess.run(["ssh-keyscan", "-p", str(sshd.port), "127.0.0.1"], capture_output=True,
                          text=True, timeout=30)
    sshd.known_hosts.write_text(scan.stdout)
    with connect("lo", sshd.target()) as tr:
        assert tr.run(["true"]).ok


def test_trust_on_first_use_records_the_key(sshd):
    sshd.untrust()
    with connect("lo", sshd.target(trust_on_first_use=True)) as tr:
        assert tr.run(["true"]).ok
    assert sshd.host_key_line.split()[2] in sshd.known_hosts.read_text()
    with connect("lo", sshd.target()) as tr:  # now known, without TOFU
        assert tr.run(["true"]).ok


def test_changed_host_key_is_refused(sshd, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = (tmp_path / "other_key.pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    with pytest.raises(InfraError) as info:
        connect("lo", sshd.target(trust_on_first_use=True))
    assert info.value.kind == "hostkey" and "CHANGED" in info.value.message
    assert sshd.fingerprint in info.value.message


def test_wrong_key_is_an_auth_error(sshd, tmp_path):
    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    with pytest.raises(InfraError) as info:
        connect("lo", sshd.target(identity_file=str(wrong)))
    assert info.value.kind == "auth" and info.value.phase == "connect"


def test_refused_port_is_unreachable(sshd):
    sshd.stop()
    with pytest.raises(InfraError) as info:
        connect("lo", sshd.target())
    assert info.value.kind == "unreachable" and info.value.phase == "connect"


def test_relative_paths_resolve_against_the_inventory(sshd, tmp_path):
    inv = sshd.root / "inventory.yaml"
    target = sshd.target(identity_file="id_ed25519", known_hosts="known_hosts")
    with connect("lo", target, inv) as tr:
        assert tr.run(["true"]).ok


def test_local_targets_get_the_local_transport(tmp_path):
    tr = connect("host", Target(kind="cpu", workdir=str(tmp_path / "w")))
    assert isinstance(tr, LocalTransport) and tr.workdir == str(tmp_path / "w")
    tr = connect("host", Target(kind="cpu", workdir="~/.cache/harness/targets/host"))
    assert tr.workdir == str(Path("~/.cache/harness/targets/host").expanduser())


def test_killed_sshd_mid_command_is_unreachable_in_phase_run(sshd):
    with connect("lo", sshd.target()) as tr:
        killer = threading.Timer(1.0, sshd.kill)
        killer.start()
        with pytest.raises(InfraError) as info:
            tr.run(["sleep", "60"])
        killer.join()
        assert info.value.kind == "unreachable" and info.value.phase == "run"


# ----------------------------------------------------------------- shell injection

def _inventory(tmp_path: Path, name: str, entry: dict) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"targets": {name: entry}}))
    return path


def test_injection_in_target_name_is_rejected_and_nothing_runs(sshd, tmp_path):
    marker = tmp_path / "pwned"
    name = f"a;touch {marker}"
    with pytest.raises(UserError, match="not allowed"):
        load_inventory(_inventory(tmp_path, name, sshd.inventory_entry()))
    with pytest.raises(UserError):
        connect(name, sshd.target())
    assert not marker.exists()


def test_injection_in_workdir_is_rejected_by_the_inventory(sshd, tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UserError, match="workdir"):
        load_inventory(_inventory(tmp_path, "lo", sshd.inventory_entry(
            workdir=f"~/w$(touch {marker})")))
    for field, value in (("host", "127.0.0.1;touch x"), ("user", "root;touch x"),
                         ("ssh", "a@b;touch x"), ("jump", "$(touch x)"), ("python", "python3;id")):
        with pytest.raises(UserError, match=field):
            load_inventory(_inventory(tmp_path, "lo", sshd.inventory_entry(**{field: value})))
    assert not marker.exists()


def test_injection_is_quoted_even_when_validation_is_bypassed(sshd, tmp_path):
    """Defence in depth: a hostile workdir or argv never reaches the remote shell unquoted."""
    marker = tmp_path / "pwned"
    entry = sshd.inventory_entry(workdir=f"{tmp_path}/w$(touch {marker})`touch {marker}`")
    target = Target.model_construct(**Target(**sshd.inventory_entry()).model_dump() | entry)
    with connect("lo", target) as tr:
        assert tr.workdir == f"{tmp_path}/w$(touch {marker})`touch {marker}`"
        assert Path(tr.workdir).is_dir()
        tr.run(["echo", f"x;touch {marker}", f"$(touch {marker})"])
        tr.run([f"touch {marker}"])  # one argv element is one word, not a command line
        tr.put(Path(__file__), f"$(touch {marker}).txt")
        assert (Path(tr.workdir) / f"$(touch {marker}).txt").is_file()
    assert not marker.exists()


def test_a_crashing_command_is_an_exit_status_not_a_lost_connection(sshd):
    """A process killed by a signal (a runner's SIGSEGV) must not look like a dead device."""
    with connect("lo", sshd.target()) as tr:
        res = tr.run(["python3", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
        assert res.exit_code == 128 + 11
        res = tr.run(["sh", "-c", "kill -SEGV $$"])
        assert res.exit_code == 128 + 11
        assert tr.run(["true"]).ok


def test_jump_host(sshd_factory):
    bastion = sshd_factory()
    behind = sshd_factory(client_key=bastion.client_key)
    behind.known_hosts.write_text(bastion.host_key_line + "\n" + behind.host_key_line + "\n")
    target = behind.target(jump=f"{bastion.user}@127.0.0.1:{bastion.port}")
    with connect("behind", target) as tr:
        assert tr.run(["true"]).ok
    bastion.stop()  # the jump host is really on the path
    with pytest.raises(InfraError) as info:
        connect("behind", target)
    assert info.value.kind == "unreachable" and info.value.phase == "connect"


def test_ambiguous_addresses_are_rejected(tmp_path):
    for entry in ({"ssh": "pi@rpi4:2222", "port": 22}, {"ssh": "pi@rpi4", "user": "root"},
                  {"ssh": "rpi4", "host": "10.0.0.2"}):
        with pytest.raises(UserError, match="ssh"):
            load_inventory(_inventory(tmp_path, "rpi4", {"kind": "cpu", **entry}))
    load_inventory(_inventory(tmp_path, "rpi4", {"kind": "cpu", "ssh": "pi@rpi4:2222"}))


def test_ssh_shorthand_address(sshd):
    entry = sshd.inventory_entry()
    for key in ("host", "port", "user"):
        entry.pop(key)
    target = Target(**entry, ssh=f"{sshd.user}@127.0.0.1:{sshd.port}")
    with connect("short", target) as tr:
        assert (tr.host, tr.port) == ("127.0.0.1", sshd.port)
        assert tr.run(["true"]).ok
