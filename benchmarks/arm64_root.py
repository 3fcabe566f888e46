"""The emulated arm64 root: host checks, binfmt, a Debian 12 or 13 arm64 tree (mmdebstrap), its
mounts and fake /proc/cpuinfo, and the checkout installed in a venv inside. Cached and locked;
mounts are always undone."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import PACKAGE_DIR, REPO_DIR, BenchError
from benchmarks.models import default_cache

log = logging.getLogger(__name__)

SUITES = {"bookworm": "Debian 12", "trixie": "Debian 13"}  # Raspberry Pi OS before / since 10.2025
DEFAULT_SUITE = "bookworm"
ROOT_PACKAGES = (
    "python3,python3-venv,python3-pip,coreutils,dash,bash,libc-bin,libstdc++6,libgcc-s1,libgomp1,"
    "sed,grep,fonts-dejavu-core,libegl1,libegl-mesa0,libgles2,libgbm1"  # + install.sh's apt list
)
TOOLS = {  # command -> Debian package
    "mmdebstrap": "mmdebstrap",
    "qemu-aarch64": "qemu-user",
    "update-binfmts": "binfmt-support",
    "gcc": "gcc",
    "apt-get": "apt",
    "dpkg-query": "dpkg",
    "setarch": "util-linux",
    "chroot": "coreutils",
    "mount": "mount",
}
STATIC_QEMU = Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")  # qemu-user-static's binfmt
APT_INSTALL = "apt-get install qemu-user-static qemu-user binfmt-support mmdebstrap gcc"
CPUS = {  # -cpu name -> (/proc/cpuinfo CPU part, Features) as a Pi 4 / Pi 5 report them
    "cortex-a72": ("0xd08", "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": (
        "0xd0b",
        "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc "
        "dcpop asimddp",
    ),
}
GUEST_SRC = "/opt/src"
GUEST_PREFIX = "/opt/mpox-screen"  # install.sh's default
GUEST_VENV = f"{GUEST_PREFIX}/venv"
GUEST_BENCH = "/opt/bench"
GUEST_QEMU = "/opt/qemu-x86"
PLUGIN_C = PACKAGE_DIR / "insn_count.c"


def default_arm64_cache() -> Path:
    if os.environ.get("MPOX_ARM64_CACHE"):
        return Path(os.environ["MPOX_ARM64_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/mpox-bench")
    return default_cache() / "arm64"


# ---------------------------------------------------------------------------------------------
# tools and host set-up


def missing_tools() -> list[str]:
    missing = [f"{cmd} ({pkg})" for cmd, pkg in TOOLS.items() if not shutil.which(cmd)]
    if not STATIC_QEMU.exists():
        missing.append(f"{STATIC_QEMU} (qemu-user-static)")
    return missing


def check_host() -> None:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise BenchError(
            "arm64 emulation runs on an x86_64 Linux host (on a real board, "
            "run the other commands natively)"
        )
    if os.geteuid() != 0:
        raise BenchError("arm64 emulation needs root (mount, chroot)")
    missing = missing_tools()
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: {APT_INSTALL}")


def sh(cmd: list[str], timeout: float | None = 1800, **kw) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:  # emulation on a busy machine: say so, no traceback
        raise BenchError(
            f"{' '.join(map(str, cmd[:6]))} ... did not finish in {timeout:g} s "
            "(emulated arm64 is slow on a busy machine: rerun when the cores are free)"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        raise BenchError(f"{' '.join(map(str, cmd[:6]))} ... failed ({proc.returncode}): {tail}")
    return proc


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu-aarch64 enabled, else children of the guest run as x86."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    entry = binfmt / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        sh(["update-binfmts", "--enable", "qemu-aarch64"])
    if not entry.read_text().startswith("enabled"):
        raise BenchError("binfmt qemu-aarch64 is not enabled (update-binfmts --enable failed)")


def host_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources or sources.list)."""
    texts = []
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if f.is_file() and f.suffix in (".list", ".sources", ""):
            texts.append(f.read_text(errors="replace"))
    uris = re.findall(r"^URIs:\s*(\S+)", "\n".join(texts), re.M)
    uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", "\n".join(texts), re.M)
    for u in uris:
        if "security" not in u and u.rstrip("/").endswith("/debian"):
            return u
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def locked(cache: Path):
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def terminate_as_exit():
    """SIGTERM raises SystemExit, so `finally` blocks (unmounting) run when the job is killed."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ---------------------------------------------------------------------------------------------
# the root


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    path = path.resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].replace("\\040", " "))
        if point == path or path in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_all(path: Path) -> None:
    for point in mounts_under(path):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
    left = mounts_under(path)
    if left:
        raise BenchError(f"cannot unmount {left[0]}")


def cpuinfo(cpu: str, cores: int) -> str:
    part, features = CPUS[cpu]
    block = (
        "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 3\n\n"
    )
    return "".join(block.format(i=i, features=features, part=part) for i in range(cores))


class Root:
    """A cached Debian arm64 root (`suite`, a key of SUITES) with a venv holding this
    checkout's device extras."""

    def __init__(self, cache: Path, mirror: str | None = None, suite: str = DEFAULT_SUITE):
        if suite not in SUITES:
            raise BenchError(f"unknown suite {suite!r}: one of {', '.join(SUITES)}")
        self.cache = cache
        self.suite = suite
        self.path = cache / f"root-{suite}-arm64"
        self.mirror = mirror or host_mirror()

    # -- build and install --------------------------------------------------------------------
    def build(self) -> bool:
        """mmdebstrap the base root unless cached; True if it was built now."""
        stamp = self.path / ".mpox-base"
        want = f"{self.mirror}\n{ROOT_PACKAGES}\n"
        if stamp.is_file() and stamp.read_text() == want:
            return False
        unmount_all(self.path)  # never delete through a mounted /proc or /sys
        shutil.rmtree(self.path, ignore_errors=True)
        log.info("building the arm64 root from %s", self.mirror)
        sh(
            [
                "mmdebstrap",
                "--arch=arm64",
                "--variant=extract",
                f"--include={ROOT_PACKAGES}",
                self.suite,
                str(self.path),
                self.mirror,
            ]
        )
        stamp.write_text(want)
        return True

    def copy_checkout(self, src: Path = REPO_DIR) -> None:
        """The checkout's tracked and unignored files (no venv, runs or .git) into /opt/src."""
        dest = self.path / GUEST_SRC.lstrip("/")
        shutil.rmtree(dest, ignore_errors=True)
        listed = subprocess.run(
            ["git", "-C", str(src), "ls-files", "-co", "--exclude-standard", "-z"],
            capture_output=True,
        )
        if listed.returncode == 0:
            for rel in filter(None, listed.stdout.decode().split("\0")):
                f = src / rel
                if f.is_file():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest / rel)
        else:  # not a git checkout
            ignore = shutil.ignore_patterns(".venv", "runs", ".git", "__pycache__", "*.egg-info")
            shutil.copytree(src, dest, ignore=ignore)

    def install(self) -> dict:
        """The kit installed in the guest by its own installer (systemd/install.sh from /opt/src:
        venv, extras, bundle, config, unit, /usr/local/bin/mpox-screen; no apt, user or
        systemctl). The venv persists in the cached root, so a rerun downloads nothing unless
        the dependencies changed."""
        self.copy_checkout()
        full = not (self.path / GUEST_VENV.lstrip("/") / "bin" / "python").exists()
        t0 = time.perf_counter()
        flags = ["--no-apt", "--no-user", "--no-systemctl", "--prefix", GUEST_PREFIX]
        self.guest(["/bin/bash", f"{GUEST_SRC}/systemd/install.sh", *flags], timeout=2400)
        return {"full_install": full, "install_s": round(time.perf_counter() - t0, 1)}

    # -- running ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def mounted(self, cpu: str):
        """proc, sysfs and a fake aarch64 /proc/cpuinfo for `cpu` (ONNX Runtime crashes on the
        host's x86 one); DNS and CA bundle for pip. Always unmounted again."""
        unmount_all(self.path)
        info = self.cache / f"cpuinfo-{cpu}"
        info.write_text(cpuinfo(cpu, os.cpu_count() or 1))
        (self.path / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", self.path / "etc/ssl/certs/")
        with contextlib.suppress(OSError):
            shutil.copy("/etc/resolv.conf", self.path / "etc/resolv.conf")
        try:
            sh(["mount", "-t", "proc", "proc", str(self.path / "proc")])
            sh(["mount", "-t", "sysfs", "sysfs", str(self.path / "sys")])
            sh(["mount", "--bind", str(info), str(self.path / "proc/cpuinfo")])
            self.cpu = cpu
            yield self
        finally:
            unmount_all(self.path)

    def env(self, **extra: str) -> list[str]:
        base = {
            "PATH": f"{GUEST_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "QEMU_CPU": getattr(self, "cpu", "cortex-a72"),
            **extra,
        }
        return ["env", "-i", *(f"{k}={v}" for k, v in base.items())]

    def guest(self, argv: list[str], timeout: float = 900, check: bool = True):
        """Run an aarch64 command in the root through binfmt (qemu-user-static)."""
        cmd = [*self.env(), shutil.which("chroot"), str(self.path), *argv]
        if check:
            return sh(cmd, timeout=timeout)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# the counting plugin
