"""Model updates from a USB stick, with a way back: `mpox-screen bundle install | list | rollback`.

STORE (default /opt/mpox-screen/bundles) holds one folder per installed bundle version and two
symlinks, `current` (what the kit runs: the service reads STORE/current) and `previous`. An
install unpacks a folder or a .tar(.gz) archive (tarfile's "data" filter: no absolute paths, no
link out of the archive; sizes capped), copies the manifest, its signature and every file the
manifest pins (models, cannot-judge data, card) into a staging folder with each copy capped at
its pinned size, and then checks only the staged bytes: schema and values, every file's sha256,
the signature against the trusted keys. A source swapped or edited during the install cannot
slip past the checks. It refuses an older bundle than the current one unless asked, and only
then renames the staged folder into place and switches `current` with one atomic rename. Every
refusal leaves the installed bundles as they were; one install runs at a time (a lock), and the
leftovers of an install killed midway are removed by the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from device import DeviceError
from device.core.bundle import load_bundle
from device.core.manifest import Manifest
from device.core.manifest_check import (
    MAX_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    inside,
    read_manifest,
)
from device.updates.signing import KEYS_DIR, MAX_SIGNATURE_BYTES, SIGNATURE, signed_by

STORE = Path("/opt/mpox-screen/bundles")
SERVICE = "mpox-screen"
DROP_IN = Path(f"/etc/systemd/system/{SERVICE}.service.d/bundle-store.conf")


MAX_ARCHIVE_BYTES = 1 << 30  # all members of an archive together, unpacked
MAX_MEMBERS = 64  # a bundle has under ten files


@dataclass(frozen=True)
class Installed:
    path: Path
    name: str
    version: str
    created: datetime
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


def _capped_filter():
    """tarfile's "data" filter, and a cap on the members' count and unpacked size: a 6 MB
    .tar.gz may hold a 2 GB file."""
    seen = {"n": 0, "bytes": 0}

    def check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        member = tarfile.data_filter(member, path)
        seen["n"] += 1
        seen["bytes"] += member.size
        if seen["n"] > MAX_MEMBERS or seen["bytes"] > MAX_ARCHIVE_BYTES:
            raise tarfile.TarError(
                f"more than {MAX_MEMBERS} files or {MAX_ARCHIVE_BYTES >> 20} MB unpacked"
            )
        return member

    return check


def unpack(src: Path, into: Path) -> Path:
    if src.is_dir():
        return _bundle_root(src)
    if not src.is_file():
        raise DeviceError(f"{src}: no such bundle folder or archive")
    try:
        with tarfile.open(src) as tar:
            tar.extractall(into, filter=_capped_filter())
    except (tarfile.TarError, EOFError, OSError) as e:
        why = " ".join(str(e).split())[:200]  # tarfile's messages span lines
        raise DeviceError(f"{src}: not a complete, safe bundle archive ({why})") from None
    return _bundle_root(into)


def made(manifest: Manifest, where: Path) -> datetime:
    """When a bundle was made: the store orders and names bundles by it."""
    if manifest.created is None:
        raise DeviceError(f"{where}: the manifest has no 'created' time; the store needs one")
    return manifest.created


def copy_capped(src: Path, dest: Path, limit: int) -> None:
    """Copy at most `limit` bytes; a longer file (or one that grew since it was checked) is
    refused. What is checked later is this copy, never the source again."""
    with src.open("rb") as f, dest.open("wb") as out:
        left = limit + 1
        while left > 0 and (block := f.read(min(1 << 20, left))):
            out.write(block)
            left -= len(block)
    if left <= 0:
        raise DeviceError(f"{src.name}: larger than the {limit} bytes it may have")


def stage_bundle(folder: Path, stage: Path) -> None:
    """The manifest, its signature and every pinned file, copied capped into `stage`."""
    stage.mkdir()
    copy_capped(inside(folder, "manifest.json"), stage / "manifest.json", MAX_MANIFEST_BYTES)
    if (folder / SIGNATURE).is_file():
        copy_capped(inside(folder, SIGNATURE), stage / SIGNATURE, MAX_SIGNATURE_BYTES)
    where = f"{folder.name}/manifest.json"
    manifest = Manifest.parse(read_manifest(stage / "manifest.json"), where)
    for pin in manifest.pinned():
        copy_capped(inside(folder, pin.file), stage / pin.file, min(pin.size, MAX_FILE_BYTES))


class BundleStore:
    def __init__(self, root: Path = STORE, keys_dir: Path = KEYS_DIR):
        self.root, self.keys_dir = Path(root), Path(keys_dir)

    def _link(self, name: str) -> Path | None:
        link = self.root / name
        return link.resolve() if link.is_symlink() else None

    def installed(self) -> list[Installed]:
        if self.root.exists() and not self.root.is_dir():
            raise DeviceError(f"bundle store {self.root}: not a folder")
        if not self.root.is_dir():
            return []
        cur, prev, out = self._link("current"), self._link("previous"), []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()):
            if d.name.startswith("."):
                continue
            try:
                m = load_bundle(d, verify=False).manifest
                when = made(m, d)
            except DeviceError:  # lost+found, a folder copied in by hand: not a bundle
                continue
            try:
                signer = signed_by(d, self.keys_dir)
            except DeviceError:  # its key was removed from the trusted ones since
                signer = "an untrusted key"
            out.append(
                Installed(
                    d,
                    m.name,
                    m.version,
                    when,
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
        with (
            self._one_at_a_time(),
            tempfile.TemporaryDirectory(dir=self.root, prefix=".incoming-") as tmp,
        ):
            stage = Path(tmp) / ".stage"
            stage_bundle(unpack(Path(src), Path(tmp)), stage)
            bundle = load_bundle(stage)  # the staged bytes: schema, values, sha256 of each
            signer = signed_by(stage, self.keys_dir)  # over the staged manifest's bytes
            if signer is None and not allow_unsigned:
                raise DeviceError(
                    f"{src}: not signed (no {SIGNATURE}); the kit installs signed bundles only"
                )
            created, cur = made(bundle.manifest, src), self.current()
            if cur and created <= cur.created and not allow_downgrade:
                raise DeviceError(
                    f"{src}: made {created.isoformat()}, not newer than the installed "
                    f"{cur.name} ({cur.created.isoformat()}); --allow-downgrade to install it"
                )
            dest = self.root / f"{bundle.name}-{created.strftime('%Y%m%dT%H%M%SZ')}"
            if dest.exists():
                raise DeviceError(f"{dest.name} is already installed: bundle rollback to use it")
            stage.chmod(0o755)
            stage.rename(dest)
        self._switch(dest, cur.path if cur else None)
        return dest, signer

    @contextlib.contextmanager
    def _one_at_a_time(self):
        """An install holds the store's lock, so the leftovers of one killed midway
        (`.incoming-*`) are the only ones there and can be removed."""
        fd = os.open(self.root / ".install.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DeviceError(f"another bundle install into {self.root} is running") from None
            for old in self.root.glob(".incoming-*"):
                shutil.rmtree(old, ignore_errors=True)
            yield
        finally:
            os.close(fd)

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
