"""Content-addressed store of measured artifacts: `<root>/<sha256>.<ext>`.

The A/B re-measurement runs the baseline's artifact beside tonight's, so the baseline's file must
still exist when its cache entry is long gone. `harness run` puts every artifact it built here
(a hard link into the cache, else a copy); `harness baseline set` pins a baseline by checking that
the artifact of every latency row is here. The root is `harness.defaults.artifact_store_dir`:
`<reports>/artifacts`, or $HARNESS_ARTIFACT_STORE.

    store = ArtifactStore(root)
    store.put(path, sha256)          # idempotent; a reader never sees half a file
    store.get(sha256, model="kettle_cnn", variant="w8_a8")   # the file, or a UserError with the fix
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness import defaults
from harness.errors import UserError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_EXT = "bin"


def _checked(sha256: str) -> str:
    sha = str(sha256 or "").strip().lower()
    if not SHA256.match(sha):
        raise UserError(f"artifact store: {sha256!r} is not a sha256 (64 hex digits)")
    return sha


class ArtifactStore:
    """Artifacts by sha256 in one folder (see the module docstring)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else defaults.artifact_store_dir()

    def find(self, sha256: str) -> Path | None:
        """The stored file of `sha256`, or None."""
        sha = _checked(sha256)
        if not self.root.is_dir():
            return None
        found = sorted(p for p in self.root.glob(f"{sha}.*") if p.is_file()
                       and not p.name.endswith(".tmp"))
        return found[0] if found else None

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and bool(SHA256.match(sha256.lower())) \
            and self.find(sha256) is not None

    def put(self, path: Path | str, sha256: str) -> Path:
        """Keep `path` (whose content has this sha256) as `<root>/<sha256>.<ext>`.

        A hard link when the store and the file share a file system (cheap, no copy), else a copy;
        written under a temporary name and renamed. An artifact already stored is left alone.
        """
        sha = _checked(sha256)
        source = Path(path)
        if not source.is_file():
            raise UserError(f"artifact store: {source} is not a file")
        existing = self.find(sha)
        if existing is not None:
            return existing
        ext = source.suffix.lstrip(".") or DEFAULT_EXT
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"{sha}.{ext}"
        tmp = self.root / f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def get(self, sha256: str, *, model: str | None = None, variant: str | None = None,
            target: str | None = None) -> Path:
        """The stored file of `sha256`; a UserError naming it, the model/variant and the fix."""
        found = self.find(sha256)
        if found is not None:
            return found
        what = "/".join(str(x) for x in (model, variant) if x) or "an artifact"
        where = f" on {target}" if target else ""
        raise UserError(f"artifact {sha256} ({what}{where}) is not in the artifact store "
                        f"{self.root}",
                        hint=f"run `harness baseline set RUN` on this machine, or copy the file "
                             f"into {self.root} as {sha256}.<ext>")

    def missing(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The rows (one per artifact) whose `artifact_sha256` is not stored."""
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            sha = str(row.get("artifact_sha256") or "")
            if sha and sha not in out and self.find(sha) is None:
                out[sha] = dict(row)
        return list(out.values())

    def pin(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Check that every row's artifact is stored: the sha256s pinned, or a UserError listing
        each missing artifact and the fix."""
        rows = [r for r in rows if str(r.get("artifact_sha256") or "")]
        lost = self.missing(rows)
        if lost:
            names = "; ".join(f"{r['artifact_sha256'][:12]} ({r.get('model')}/{r.get('variant')}"
                              f" on {r.get('target')})" for r in lost[:8])
            more = f" and {len(lost) - 8} more" if len(lost) > 8 else ""
            raise UserError(f"{len(lost)} artifact(s) of the baseline are not in the artifact "
                            f"store {self.root}: {names}{more}",
                            hint="set the baseline from a run made on this machine by `harness "
                                 "run` (it stores what it measures), or copy the files into "
                                 f"{self.root} as <sha256>.<ext>")
        return sorted({str(r["artifact_sha256"]) for r in rows})


def store_of_run(run_path: Path | str) -> ArtifactStore:
    """The store beside a run directory `<reports>/<suite>/<run-id>`: `<reports>/artifacts`
    (or $HARNESS_ARTIFACT_STORE)."""
    return ArtifactStore(defaults.artifact_store_dir(Path(run_path).resolve().parent.parent))
