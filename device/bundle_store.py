"""Model updates from a USB stick, with a way back: `mpox-screen bundle install | list | rollback`.

STORE (default /opt/mpox-screen/bundles) holds one folder per installed bundle version and two
symlinks, `current` (what the kit runs: the service reads STORE/current) and `previous`. An
install unpacks a folder or a .tar(.gz) archive (tarfile's "data" filter: no absolute paths, no
link out of the archive), checks it exactly as the kit loads it (schema, values, every file's
sha256), checks its signature against the trusted keys, refuses an older bundle than the current
one unless asked, copies it into a new folder, and only then switches `current` with one atomic
rename. Every refusal leaves the installed bundles as they were.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from device import DeviceError
from device.bundle import load_bundle
from device.manifest_check import pinned_files
from device.signing import KEYS_DIR, SIGNATURE, signed_by

STORE = Path("/opt/mpox-screen/bundles")
SERVICE = "mpox-screen"
DROP_IN = Path(f"/etc/systemd/system/{SERVICE}.service.d/bundle-store.conf")


@dataclass(frozen=True)
class Installed:
    path: Path
    name: str
    version: str
    created: str
    signed_by: str | None
    current: bool = False
    previous: bool = False


def _bundle_root(folder: Path) -> Path:
    """The folder holding manifest.json: the top of the archive or its one sub-folder."""
    if (folder / "manifest.json").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    if len(subs) == 1 and (subs[0] / "manifest.json").is_file():
        return subs[0]
    raise DeviceError(f"{folder.name}: no manifest.json at the top or in one sub-folder")


def unpack(src: Path, into: Path) -> Path:
    if src.is_dir():
        return _bundle_root(src)
    if not src.is_file():
        raise DeviceError(f"{src}: no such bundle folder or archive")
    try:
        with tarfile.open(src) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        why = " ".join(str(e).split())[:200]  # tarfile's messages span lines
        raise DeviceError(f"{src}: not a complete, safe bundle archive ({why})") from None
    return _bundle_root(into)


def stamp(created: str) -> str:
    """The folder suffix of a bundle made at `created` (ISO 8601): 20261130T224600Z."""
    try:
        when = datetime.fromisoformat(created).astimezone(timezone.utc)
    except ValueError:
        raise DeviceError(f"manifest 'created' {created!r} is not an ISO 8601 time") from None
    return when.strftime("%Y%m%dT%H%M%SZ")


class BundleStore:
    def __init__(self, root: Path = STORE, keys_dir: Path = KEYS_DIR):
        self.root, self.keys_dir = Path(root), Path(keys_dir)

    def _link(self, name: str) -> Path | None:
        link = self.root / name
        return link.resolve() if link.is_symlink() else None

    def installed(self) -> list[Installed]:
        if not self.root.is_dir():
            return []
        cur, prev, out = self._link("current"), self._link("previous"), []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()):
            if d.name.startswith("."):
                continue
            m = load_bundle(d, verify=False).manifest
            try:
                signer = signed_by(d, self.keys_dir)
            except DeviceError:  # its key was removed from the trusted ones since
                signer = "an untrusted key"
            out.append(
                Installed(
                    d,
                    m["model"]["name"],
                    m["model"]["version"],
                    m.get("created", ""),
                    signer,
                    d == cur,
                    d == prev,
                )
            )
        return sorted(out, key=lambda i: i.created)

    def current(self) -> Installed | None:
        return next((i for i in self.installed() if i.current), None)

    def install(self, src: Path, allow_downgrade: bool = False, allow_unsigned: bool = False):
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".incoming-") as tmp:
            folder = unpack(Path(src), Path(tmp))
            bundle = load_bundle(folder)  # schema, values, files and their sha256
            signer = signed_by(folder, self.keys_dir)
            if signer is None and not allow_unsigned:
                raise DeviceError(
                    f"{src}: not signed (no {SIGNATURE}); the kit installs signed bundles only"
                )
            created = bundle.manifest.get("created", "")
            cur = self.current()
            if cur and created <= cur.created and not allow_downgrade:
                raise DeviceError(
                    f"{src}: made {created or 'at an unknown time'}, not newer than the installed "
                    f"{cur.name} ({cur.created}); --allow-downgrade to install it anyway"
                )
            dest = self.root / f"{bundle.name}-{stamp(created)}"
            if dest.exists():
                raise DeviceError(f"{dest.name} is already installed: bundle rollback to use it")
            stage = Path(tmp) / ".stage"
            stage.mkdir()
            names = ["manifest.json", *pinned_files(bundle.manifest), SIGNATURE, "card.md"]
            for name in names:
                if (folder / name).is_file():
                    shutil.copyfile(folder / name, stage / name)
            load_bundle(stage)  # the copy, checked again before it goes live
            stage.chmod(0o755)
            stage.rename(dest)
        self._switch(dest, cur.path if cur else None)
        return dest, signer

    def rollback(self) -> Path:
        prev, cur = self._link("previous"), self._link("current")
        if prev is None or not prev.is_dir():
            raise DeviceError(f"no previous bundle in {self.root} to go back to")
        load_bundle(prev)
        self._switch(prev, cur)
        return prev

    def _switch(self, new: Path, old: Path | None) -> None:
        """`current` -> new (and `previous` -> old), each by one atomic rename of a symlink."""
        for name, target in (("previous", old), ("current", new)):
            if target is None:
                continue
            tmp = self.root / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target.name)
            os.replace(tmp, self.root / name)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def point_service_at(store: Path) -> str:
    """On a kit (the unit installed), make the service read STORE/current and restart it if
    it runs; elsewhere say what to do."""
    unit = Path(f"/etc/systemd/system/{SERVICE}.service")
    if not unit.is_file() or shutil.which("systemctl") is None:
        return f"run the kit with MPOX_BUNDLE={store / 'current'} (or --bundle)"
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    DROP_IN.write_text(f"[Service]\nEnvironment=MPOX_BUNDLE={store / 'current'}\n")
    subprocess.run(["systemctl", "daemon-reload"], check=False)
    subprocess.run(["systemctl", "try-restart", SERVICE], check=False)
    return f"{SERVICE} restarted (if it was running) with {store / 'current'}"
