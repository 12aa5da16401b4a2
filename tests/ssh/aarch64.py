"""Build (and cache) an arm64 Debian root file system that runs under qemu-user-static.

The root file system is made of the arm64 `.deb`s of python3.11 and its libraries unpacked with
`dpkg -x` (seconds, no debootstrap), plus Python wheels installed from the host with
`pip install --target … --platform manylinux_2_34_aarch64 --only-binary=:all:`.

It is cached under ``~/.cache/harness-test/aarch64-rootfs/<recipe-hash>`` so tests build it once.
Run as a script to build it ahead of time (CI does this in .ci/setup_ssh_tests.sh):

    python tests/ssh/aarch64.py            # prints the root file system path

Needs root (for binfmt_misc), `dpkg --add-architecture arm64` + `apt-get update`, qemu-user-static.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# arm64 Debian 12 packages: python3.11 and what it links, a shell, coreutils (sha256sum),
# libstdc++ for the TFLite runtime, base-files for /etc/os-release.
DEBS = [
    "base-files", "bash", "dash", "coreutils", "libc6", "libc-bin", "gcc-12-base", "libgcc-s1",
    "libstdc++6", "libacl1", "libattr1", "libselinux1", "libpcre2-8-0", "libgmp10", "libtinfo6",
    "libncursesw6", "libreadline8", "readline-common", "libbz2-1.0", "liblzma5", "libzstd1",
    "zlib1g", "libexpat1", "libffi8", "libssl3", "libsqlite3-0", "libuuid1", "libdb5.3",
    "libcrypt1", "libnsl2", "libtirpc3", "libtirpc-common", "libgssapi-krb5-2", "libkrb5-3",
    "libk5crypto3", "libkrb5support0", "libkeyutils1", "libcom-err2", "libmd0", "media-types",
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11",
]
# ai-edge-litert 2.3.0 SIGSEGVs under qemu 7.2 when its default delegate is applied;
# tflite-runtime 2.14.0 (which needs numpy<2) runs.
WHEELS = ["numpy<2", "tflite-runtime==2.14.0"]
PLATFORM = "manylinux_2_34_aarch64"
# numpy 1.26 ships manylinux_2_17 / manylinux2014 aarch64 wheels; pip does not widen --platform itself
EXTRA_PLATFORMS = ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
RECIPE_VERSION = 1
# Extra overlay layers on top of the root fs (only a site-packages dir each), for devices that
# differ by what is pip-installed. "litert": ai-edge-litert 2.3.0, which the runner prefers and which
# SIGSEGVs under qemu 7.2 when its default delegate is applied: a real runner crash, on demand.
LAYERS = {"litert": ["ai-edge-litert==2.3.0", "numpy<2"]}
LAYER_PLATFORMS = ["manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
                   "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
SITE = "usr/local/lib/python3.11/dist-packages"
CACHE_ROOT = Path(os.environ.get("HARNESS_TEST_CACHE", "~/.cache/harness-test")).expanduser()


def recipe_hash() -> str:
    recipe = {"v": RECIPE_VERSION, "debs": DEBS, "wheels": WHEELS, "platform": PLATFORM,
              "extra": EXTRA_PLATFORMS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def rootfs_path() -> Path:
    return CACHE_ROOT / "aarch64-rootfs" / recipe_hash()


def binfmt_ready() -> str | None:
    """Mount binfmt_misc and enable qemu-aarch64; return None when ready, else why not."""
    if not shutil.which("qemu-aarch64-static"):
        return "qemu-user-static is not installed (apt-get install qemu-user-static binfmt-support)"
    mnt = Path("/proc/sys/fs/binfmt_misc")
    if not (mnt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(mnt)], check=False,
                       capture_output=True)
    entry = mnt / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        if shutil.which("update-binfmts"):
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False,
                           capture_output=True)
    if not entry.exists() or "enabled" not in entry.read_text():
        return "binfmt_misc entry qemu-aarch64 is not enabled (update-binfmts --enable qemu-aarch64)"
    if "F" not in next((line for line in entry.read_text().splitlines()
                        if line.startswith("flags:")), ""):
        return "binfmt_misc qemu-aarch64 lacks the F (fix-binary) flag needed inside a chroot"
    return None


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _ensure_arm64_apt() -> None:
    arches = _run(["dpkg", "--print-foreign-architectures"]).stdout.split()
    if "arm64" not in arches:
        _run(["dpkg", "--add-architecture", "arm64"])
        _run(["apt-get", "update"])


def build(dest: Path | None = None, log=print) -> Path:
    """Return the cached root file system, building it first if needed (idempotent, locked)."""
    dest = dest or rootfs_path()
    if (dest / ".complete").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ".complete").exists():
            return dest
        if os.geteuid() != 0:
            raise RuntimeError("building the aarch64 root file system needs root")
        _ensure_arm64_apt()
        work = Path(tempfile.mkdtemp(prefix="aarch64-build-", dir=dest.parent))
        try:
            debs = work / "debs"
            debs.mkdir()
            log(f"downloading {len(DEBS)} arm64 packages")
            _run(["apt-get", "download", *[f"{d}:arm64" if d not in ("media-types",
                                                                       "readline-common",
                                                                       "libtirpc-common")
                                            else d for d in DEBS]], cwd=debs)
            root = work / "root"
            root.mkdir()
            for deb in sorted(debs.glob("*.deb")):
                _run(["dpkg", "-x", str(deb), str(root)])
            for rel in ("usr/bin/python3", "bin/python3"):
                link = root / rel
                if link.parent.is_dir() and not link.exists():
                    link.symlink_to("python3.11")
            for d in ("root", "tmp", "dev", "proc", "sys", "etc", "var/tmp", "run"):
                (root / d).mkdir(parents=True, exist_ok=True)
            (root / "root").chmod(0o700)
            (root / "tmp").chmod(0o1777)
            (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
            (root / "etc/group").write_text("root:x:0:\n")
            (root / "etc/hostname").write_text("rpi4-emulated\n")
            site = root / "usr/local/lib/python3.11/dist-packages"
            site.mkdir(parents=True, exist_ok=True)
            log(f"installing wheels {WHEELS} for {PLATFORM}")
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                  "--disable-pip-version-check", "--target", str(site), "--platform", PLATFORM,
                  *[arg for p in EXTRA_PLATFORMS for arg in ("--platform", p)],
                  "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                  "--only-binary=:all:", *WHEELS])
            # the ld.so cache, made by the arm64 ldconfig through qemu (binfmt F flag)
            if binfmt_ready() is None:
                subprocess.run(["chroot", str(root), "/sbin/ldconfig"], capture_output=True)
            os.chmod(root, 0o755)
            (root / ".complete").write_text(recipe_hash() + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(root, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def build_layer(name: str, log=print) -> Path:
    """An overlay layer holding `LAYERS[name]` (with dependencies) in the root fs's site-packages."""
    recipe = json.dumps({"layer": name, "wheels": LAYERS[name], "platforms": LAYER_PLATFORMS,
                         "base": recipe_hash()}, sort_keys=True)
    dest = CACHE_ROOT / "aarch64-rootfs" / f"layer-{name}-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"
    if (dest / ".complete").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ".complete").exists():
            return dest
        work = Path(tempfile.mkdtemp(prefix=f"layer-{name}-", dir=dest.parent))
        try:
            site = work / SITE
            site.mkdir(parents=True)
            log(f"installing layer {name}: {LAYERS[name]}")
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--target", str(site), *[a for p in LAYER_PLATFORMS for a in ("--platform", p)],
                  "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                  "--only-binary=:all:", *LAYERS[name]])
            for d in (work, *[work / Path(SITE).parents[i] for i in range(len(Path(SITE).parts) - 1)]):
                os.chmod(d, 0o755)
            (work / ".complete").write_text(name + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(work, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


if __name__ == "__main__":
    path = build(log=lambda msg: print(msg, file=sys.stderr))
    for layer in LAYERS:
        build_layer(layer, log=lambda msg: print(msg, file=sys.stderr))
    why = binfmt_ready()
    if why:
        print(f"warning: {why}", file=sys.stderr)
    print(path)
