"""Guest instruction counting: the TCG plugin (`insn_count.c`) built against qemu-plugin.h from
Debian's qemu source package, the dynamic qemu-aarch64 staged in the root, and `count()`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from benchmarks import BenchError
from benchmarks.arm64_root import GUEST_QEMU, GUEST_VENV, PLUGIN_C, Root, sh

log = logging.getLogger(__name__)


def host_suite() -> str:
    """This machine's Debian release: the qemu source must match the host's qemu-user."""
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    found = re.search(r"^VERSION_CODENAME=\"?(\w+)", release, re.M)
    return found.group(1) if found else "bookworm"


def plugin_header(cache: Path, mirror: str) -> Path:
    """qemu-plugin.h of the installed qemu-user's source version, from Debian's source package
    (apt-get source --download-only with a private apt configuration)."""
    version = sh(["dpkg-query", "-W", "-f", "${source:Version}", "qemu-user"]).stdout.strip()
    out = cache / "qemu-src" / version.replace(":", "_")
    header = out / "qemu-plugin.h"
    if header.is_file():
        return header
    apt = cache / "apt-private"
    shutil.rmtree(apt, ignore_errors=True)
    for d in (
        "lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
        "dl",
    ):
        (apt / d).mkdir(parents=True, exist_ok=True)
    security = mirror.rstrip("/").removesuffix("/debian") + "/debian-security"
    suite = host_suite()
    (apt / "etc/sources.list").write_text(
        f"deb-src {mirror} {suite} main\ndeb-src {mirror} {suite}-updates main\n"
        f"deb-src {security} {suite}-security main\n"
    )
    opts = []
    for key, value in {
        "Dir::Etc::SourceList": apt / "etc/sources.list",
        "Dir::Etc::SourceParts": apt / "etc/sources.list.d",
        "Dir::Etc::Preferences": apt / "etc/preferences",
        "Dir::Etc::PreferencesParts": apt / "etc/preferences.d",
        "Dir::State::Lists": apt / "lists",
        "Dir::Cache": apt / "cache",
        "APT::Sandbox::User": "root",
    }.items():
        opts += ["-o", f"{key}={value}"]
    log.info("fetching qemu %s source for qemu-plugin.h", version)
    sh(["apt-get", *opts, "-q", "update"])
    sh(["apt-get", *opts, "-q", "source", "--download-only", f"qemu={version}"], cwd=apt / "dl")
    tarballs = sorted((apt / "dl").glob("qemu_*.orig.tar.*"))
    if not tarballs:
        raise BenchError("apt-get source qemu gave no .orig tarball")
    member = sh(["tar", "-tf", str(tarballs[0])]).stdout.splitlines()
    wanted = [m for m in member if m.endswith("include/qemu/qemu-plugin.h")]
    if not wanted:
        raise BenchError(f"{tarballs[0].name} has no include/qemu/qemu-plugin.h")
    out.mkdir(parents=True, exist_ok=True)
    data = sh(["tar", "-xOf", str(tarballs[0]), wanted[0]]).stdout
    header.write_text(data)
    shutil.rmtree(apt, ignore_errors=True)
    return header


def build_plugin(cache: Path, mirror: str) -> Path:
    header = plugin_header(cache, mirror)
    key = hashlib.sha256(PLUGIN_C.read_bytes() + header.read_bytes()).hexdigest()[:12]
    so = cache / "plugin" / f"insn_count-{key}.so"
    if not so.is_file():
        so.parent.mkdir(parents=True, exist_ok=True)
        sh(
            [
                "gcc",
                "-shared",
                "-fPIC",
                "-O2",
                "-Wall",
                "-Werror",
                "-I",
                str(header.parent),
                str(PLUGIN_C),
                "-o",
                str(so),
            ]
        )
    return so


def stage_qemu(root: Root, plugin: Path) -> None:
    """The dynamic x86 qemu-aarch64, its libraries and the plugin inside the root: it then runs
    in the chroot, so the guest sees the same files as in the smoke."""
    qemu = Path(shutil.which("qemu-aarch64"))
    dest = root.path / GUEST_QEMU.lstrip("/")
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "lib").mkdir(parents=True)
    libs = re.findall(r"(/\S+\.so[.\d]*)", sh(["ldd", str(qemu)]).stdout)
    for lib in libs:
        shutil.copy(Path(lib).resolve(), dest / "lib" / Path(lib).name)
    shutil.copy(qemu, dest / "qemu-aarch64")
    shutil.copy(plugin, dest / "insn_count.so")
    loaders = [Path(lib).name for lib in libs if "ld-linux" in lib]
    if not loaders:
        raise BenchError("ldd qemu-aarch64 shows no dynamic loader")
    root.loader = f"{GUEST_QEMU}/lib/{loaders[0]}"


def counted(root: Root, cpu: str, module: str, args: list[str], timeout: float = 1800) -> str:
    """Run `python -m module args` in the root under the counting plugin on `cpu`; the plugin's
    lines (regions, laps, the total). The guest's last stdout line is JSON naming its machine."""
    log_name = f"/tmp/insn-{os.getpid()}.log"
    host_log = root.path / log_name.lstrip("/")
    host_log.unlink(missing_ok=True)
    cmd = [
        *root.env(),
        shutil.which("setarch"),
        "x86_64",
        "-R",
        shutil.which("chroot"),
        str(root.path),
        root.loader,
        "--library-path",
        f"{GUEST_QEMU}/lib",
        f"{GUEST_QEMU}/qemu-aarch64",
        "-cpu",
        cpu,
        "-plugin",
        f"{GUEST_QEMU}/insn_count.so",
        "-d",
        "plugin",
        "-D",
        log_name,
        f"{GUEST_VENV}/bin/python",
        "-m",
        module,
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = host_log.read_text() if host_log.is_file() else ""
    host_log.unlink(missing_ok=True)
    if proc.returncode != 0 or "region 0 insns" not in text:
        raise BenchError(
            f"counting {module} {' '.join(args)} on {cpu} failed ({proc.returncode}): "
            f"{(proc.stderr.strip() or text)[-1200:]}"
        )
    if json.loads(proc.stdout.strip().splitlines()[-1])["machine"] != "aarch64":
        raise BenchError("the counted guest did not run as aarch64")
    return text


def count(root: Root, guest_file: str, cpu: str, runs: int = 2, warmup: int = 2) -> int:
    """Guest instructions of `runs` inferences of one model file (the marked region)."""
    args = [guest_file, "--runs", str(runs), "--warmup", str(warmup)]
    text = counted(root, cpu, "benchmarks.insn_guest", args)
    return int(re.search(r"^region 0 insns (\d+)$", text, re.M).group(1))


# ---------------------------------------------------------------------------------------------
# the smoke: install, assert aarch64, classify like x86
