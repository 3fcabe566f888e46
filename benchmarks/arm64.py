"""`mpox-bench arm64`: the kit on emulated aarch64 (../shared/docs/arm64-emulation.md).

1. Smoke: a Debian 12 arm64 root (mmdebstrap) run through qemu-user + binfmt with a fake
   Cortex-A72 /proc/cpuinfo; the project's `device` and `tflite` extras are installed from this
   checkout into a venv inside; `platform.machine()` must say aarch64; `mpox-screen classify
   --json` on a few images must give the labels x86 gives.
2. Instruction counts: the dynamic `qemu-aarch64` (which takes plugins; the static one refuses)
   runs each model file with `insn_count.c`, built against qemu-plugin.h from Debian's qemu source
   package (fetched with a private apt configuration: the host's apt sources stay untouched),
   counting only the marked region around the inference loop (`insn_guest.py`), with `-cpu
   cortex-a72` / `cortex-a76`, one thread, no address-space randomisation, PYTHONHASHSEED=0.

Counts measure work, not time (no cache or pipeline model): compare them as ratios. Emulated
timing is meaningless, so nothing here is timed except the steps themselves.

The root, the plugin header and the built plugin are cached (default /var/cache/mpox-bench when
root, else runs/bench-cache/arm64; $MPOX_ARM64_CACHE): a rerun only re-copies the checkout and
re-installs it (seconds). Mounts (proc, sysfs, the fake cpuinfo) are always undone on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import PACKAGE_DIR, REPO_DIR, BenchError, report
from benchmarks.models import default_baselines_dir, default_cache, kit_bundle, resolve

log = logging.getLogger(__name__)

SUITE = "bookworm"
ROOT_PACKAGES = (
    "python3,python3-venv,python3-pip,coreutils,dash,bash,libc-bin,libstdc++6,libgcc-s1,libgomp1"
)
EXTRAS = "device,tflite"
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
GUEST_VENV = "/opt/venv"
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
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
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
    """A cached Debian 12 arm64 root with a venv holding this checkout's device extras."""

    def __init__(self, cache: Path, mirror: str | None = None):
        self.cache = cache
        self.path = cache / f"root-{SUITE}-arm64"
        self.mirror = mirror or host_mirror()

    # -- build and install --------------------------------------------------------------------
    def build(self) -> bool:
        """mmdebstrap the base root unless cached; True if it was built now."""
        stamp = self.path / ".mpox-base"
        if stamp.is_file():
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
                SUITE,
                str(self.path),
                self.mirror,
            ]
        )
        stamp.write_text(self.mirror + "\n")
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
        """pip install -e /opt/src[device,tflite] into /opt/venv (deps only when they changed)."""
        self.copy_checkout()
        pyproject = (self.path / GUEST_SRC.lstrip("/") / "pyproject.toml").read_bytes()
        want = hashlib.sha256(pyproject).hexdigest()[:16]
        stamp = self.path / ".mpox-venv"
        t0 = time.perf_counter()
        have = stamp.read_text().strip() if stamp.is_file() else None
        if not (self.path / GUEST_VENV.lstrip("/") / "bin" / "python").exists():
            self.guest(["/usr/bin/python3", "-m", "venv", GUEST_VENV])
            have = None
        pip = [f"{GUEST_VENV}/bin/pip", "install", "--quiet", "--no-build-isolation"]
        if have != want:
            self.guest([f"{GUEST_VENV}/bin/pip", "install", "--quiet", "setuptools>=68"])
            self.guest([*pip, "-e", f"{GUEST_SRC}[{EXTRAS}]"], timeout=1800)
            stamp.write_text(want + "\n")
        else:
            self.guest([*pip, "--no-deps", "-e", GUEST_SRC])
        return {"full_install": have != want, "install_s": round(time.perf_counter() - t0, 1)}

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
    (apt / "etc/sources.list").write_text(
        f"deb-src {mirror} {SUITE} main\ndeb-src {mirror} {SUITE}-updates main\n"
        f"deb-src {security} {SUITE}-security main\n"
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


def count(root: Root, guest_file: str, cpu: str, runs: int = 2, warmup: int = 2) -> int:
    """Guest instructions of `runs` inferences of one model file (the marked region)."""
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
        "benchmarks.insn_guest",
        guest_file,
        "--runs",
        str(runs),
        "--warmup",
        str(warmup),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    text = host_log.read_text() if host_log.is_file() else ""
    host_log.unlink(missing_ok=True)
    m = re.search(r"^region 0 insns (\d+)$", text, re.M)
    if proc.returncode != 0 or not m:
        raise BenchError(
            f"counting {guest_file} on {cpu} failed ({proc.returncode}): "
            f"{(proc.stderr.strip() or text)[-1200:]}"
        )
    if json.loads(proc.stdout.strip().splitlines()[-1])["machine"] != "aarch64":
        raise BenchError("the counted guest did not run as aarch64")
    return int(m.group(1))


# ---------------------------------------------------------------------------------------------
# the smoke: install, assert aarch64, classify like x86


def default_images(data: Path, per_class: int = 2) -> list[Path]:
    from device.images import EXTENSIONS

    if not data.is_dir():
        raise BenchError(f"no images: {data} missing (pass --images or set MPOX_DATA)")
    out = []
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        out += sorted(f for f in d.iterdir() if f.suffix.lower() in EXTENSIONS)[:per_class]
    if not out:
        raise BenchError(f"no images in class folders under {data}")
    return out


def classify_json(cmd: list[str], runner) -> list[dict]:
    proc = runner(cmd)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def smoke(root: Root, images: list[Path], backends=("onnx", "tflite")) -> dict:
    """Assumes `root.mounted(...)`; returns the smoke's summary (raises on a failure)."""
    machine = root.guest(
        [f"{GUEST_VENV}/bin/python", "-c", "import platform; print(platform.machine())"]
    ).stdout.strip()
    if machine != "aarch64":
        raise BenchError(f"the guest reports {machine!r}, not aarch64: binfmt is not in use")
    dest = root.path / GUEST_BENCH.lstrip("/") / "images"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    names = []
    for i, img in enumerate(images):
        name = f"{i:03d}-{img.name}"
        shutil.copy(img, dest / name)
        names.append(name)
    checks = []
    for backend in backends:
        opts = ["classify", "--json", "--threads", "1", "--backend", backend, "--precision", "int8"]
        t0 = time.perf_counter()
        arm = classify_json(
            [f"{GUEST_VENV}/bin/mpox-screen", *opts, f"{GUEST_BENCH}/images"], root.guest
        )
        arm_s = time.perf_counter() - t0
        x86 = classify_json(
            [sys.executable, "-m", "device.cli", *opts, str(dest)],
            lambda c: sh(c, timeout=600),
        )
        a = {Path(r["path"]).name: r for r in arm}
        x = {Path(r["path"]).name: r for r in x86}
        if sorted(a) != sorted(names) or sorted(x) != sorted(names):
            raise BenchError(
                f"classify {backend}: expected {len(names)} results, "
                f"got {len(a)} on arm64 and {len(x)} on x86"
            )
        differ = [n for n in names if a[n]["label"] != x[n]["label"]]
        checks.append(
            {
                "backend": backend,
                "precision": "int8",
                "images": len(names),
                "labels_equal": not differ,
                "differ": differ,
                "labels": [a[n]["label"] for n in names],
                "max_abs_prob_diff": round(max(abs(a[n]["prob"] - x[n]["prob"]) for n in names), 6),
                "arm64_classify_s": round(arm_s, 1),
            }
        )
        log.info(
            "classify %s int8 on arm64: %d images, labels equal to x86: %s",
            backend,
            len(names),
            not differ,
        )
    return {"machine": machine, "classify": checks}


# ---------------------------------------------------------------------------------------------
# the command


def add_arguments(p) -> None:
    p.add_argument("--models", default="micrompoxnet,mobilenet_v2", help="default: %(default)s")
    p.add_argument("--backends", default="onnx,tflite", help="counted, and classified in the smoke")
    p.add_argument("--precisions", default="fp32,int8")
    p.add_argument("--cpus", default="cortex-a72,cortex-a76", help="default: %(default)s")
    p.add_argument("--runs", type=int, default=2, help="inferences in the counted region")
    p.add_argument("--smoke", action="store_true", help="only install + classify; no counting")
    p.add_argument("--no-smoke", action="store_true", help="skip the classify check")
    p.add_argument("--images", type=Path, nargs="+", default=None, help="photos for the smoke")
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--baselines", type=Path, default=None)
    p.add_argument("--cache", type=Path, default=None, help="root and plugin cache")
    p.add_argument("--mirror", default=None, help="Debian mirror (default: the host's)")
    report.add_output_arguments(p, "(default: qemu-aarch64)")


def _guest_path(root: Root, host_file: Path) -> str:
    """Where a model file is seen in the guest: bundles of the checkout under /opt/src, other
    files copied to /opt/bench/models."""
    try:
        rel = host_file.resolve().relative_to(REPO_DIR)
        if (root.path / GUEST_SRC.lstrip("/") / rel).is_file():
            return f"{GUEST_SRC}/{rel.as_posix()}"
    except ValueError:
        pass
    digest = hashlib.sha256(str(host_file.resolve()).encode()).hexdigest()[:8]
    dest = root.path / GUEST_BENCH.lstrip("/") / "models" / digest / host_file.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(host_file, dest)
    return f"{GUEST_BENCH}/models/{digest}/{host_file.name}"


def count_rows(root: Root, entries, backends, precisions, cpus, runs: int) -> list[dict]:
    rows = []
    for cpu in cpus:
        with root.mounted(cpu):
            for e in entries:
                for backend in backends:
                    for precision in precisions:
                        try:
                            f = e.bundle.select(backend, precision)
                        except Exception:  # a bundle without that file
                            continue
                        t0 = time.perf_counter()
                        n = count(root, _guest_path(root, f.path), cpu, runs)
                        row = {
                            "model": e.name,
                            "architecture": e.architecture,
                            "input_size": e.input_size,
                            "backend": backend,
                            "precision": precision,
                            "cpu": cpu,
                            "instructions_per_inference": round(n / runs),
                            "region_instructions": n,
                            "runs": runs,
                            "macs": e.macs,
                            "instructions_per_mac": round(n / runs / e.macs, 3) if e.macs else None,
                            "file": report.shown(f.path),
                            "count_s": round(time.perf_counter() - t0, 1),
                        }
                        rows.append(row)
                        print(
                            f"{cpu} {e.name} {backend} {precision}: "
                            f"{row['instructions_per_inference'] / 1e6:.1f} M instructions "
                            f"per inference ({row['count_s']} s)",
                            file=sys.stderr,
                        )
    return rows


def targets(rows: list[dict], arch: str, reference: str = "mobilenet_v2") -> list[dict]:
    """On Cortex-A72, for the bundle's model and its registry variants (names starting with its
    architecture): int8 / reference int8 <= 0.5, and int8 / its own fp32 <= 0.5."""
    get = {(r["model"], r["backend"], r["precision"], r["cpu"]): r for r in rows}
    models = dict.fromkeys(r["model"] for r in rows if r["architecture"].startswith(arch))
    out = []
    for model in models:
        for backend in sorted({r["backend"] for r in rows}):
            m8 = get.get((model, backend, "int8", "cortex-a72"))
            r8 = get.get((reference, backend, "int8", "cortex-a72"))
            m32 = get.get((model, backend, "fp32", "cortex-a72"))
            for what, num, den in (
                (f"{model} int8 / {reference}@224 int8", m8, r8),
                (f"{model} int8 / {model} fp32", m8, m32),
            ):
                if num and den:
                    ratio = num["instructions_per_inference"] / den["instructions_per_inference"]
                    out.append(
                        {
                            "model": model,
                            "what": what,
                            "backend": backend,
                            "cpu": "cortex-a72",
                            "ratio": round(ratio, 3),
                            "target": 0.5,
                            "met": ratio <= 0.5,
                        }
                    )
    return out


def run(args) -> int:
    check_host()
    cache = args.cache or default_arm64_cache()
    root = Root(cache, args.mirror)
    doc = report.document(
        "arm64",
        {
            "suite": f"Debian 12 ({SUITE}) arm64, mmdebstrap --variant=extract",
            "mirror": root.mirror,
            "qemu": sh(["dpkg-query", "-W", "-f", "${Version}", "qemu-user"]).stdout.strip(),
            "counting": "TCG plugin insn_count.c: guest instructions in the marked region "
            "around the inference loop; dynamic qemu-aarch64 -cpu CPU, setarch -R, "
            "PYTHONHASHSEED=0, one thread",
            "runs": args.runs,
        },
        args.board or "qemu-aarch64",
    )
    t_start = time.perf_counter()
    with terminate_as_exit(), locked(cache):
        ensure_binfmt()
        t0 = time.perf_counter()
        built = root.build()
        doc["root"] = {
            "path": str(root.path),
            "built_now": built,
            "build_s": round(time.perf_counter() - t0, 1),
        }
        with root.mounted("cortex-a72"):
            doc["root"].update(root.install())
            if not args.no_smoke:
                from benchmarks.accuracy import default_data

                images = args.images or default_images(default_data())
                doc["smoke"] = smoke(root, images, args.backends.split(","))
        if not args.smoke:
            bundle = kit_bundle(args.bundle)
            baselines = args.baselines or default_baselines_dir()
            names = [n for n in args.models.split(",") if n]
            entries, missing = resolve(names, bundle, baselines)
            if missing:
                from benchmarks.latency import can_export, export_missing

                if not can_export():
                    raise BenchError(f"{', '.join(missing)} not in {baselines}: export first")
                export_missing(missing, baselines, args.bundle)
                entries, _ = resolve(names, bundle, baselines)
            stage_qemu(root, build_plugin(cache, root.mirror))
            doc["results"] = count_rows(
                root,
                entries,
                args.backends.split(","),
                args.precisions.split(","),
                args.cpus.split(","),
                args.runs,
            )
            arch = bundle.manifest["model"].get("architecture", bundle.name)
            doc["targets"] = targets(doc["results"], arch)
    doc["total_s"] = round(time.perf_counter() - t_start, 1)
    report.finish(doc, args)
    failed = [c for c in doc.get("smoke", {}).get("classify", []) if not c["labels_equal"]]
    if failed:
        print(
            f"mpox-bench arm64: labels differ from x86 for {failed[0]['differ']}", file=sys.stderr
        )
        return 1
    return 0


def markdown(doc: dict) -> str:
    out = ["## Emulated arm64 (`mpox-bench arm64`)", ""]
    r = doc.get("root", {})
    out.append(
        f"{doc['created']}; {doc['config']['suite']}, qemu {doc['config']['qemu']}; root "
        f"{'built' if r.get('built_now') else 'cached'} ({r.get('build_s')} s), install "
        f"{r.get('install_s')} s ({'full' if r.get('full_install') else 'project only'}); "
        f"whole command {doc.get('total_s')} s."
    )
    for c in doc.get("smoke", {}).get("classify", []):
        out += [
            "",
            f"Smoke: `mpox-screen classify --backend {c['backend']} --precision int8` on "
            f"{c['images']} images under emulated aarch64: labels equal to x86: "
            f"**{c['labels_equal']}** (largest P difference {c['max_abs_prob_diff']}).",
        ]
    if doc.get("results"):
        rows = [
            {
                **x,
                "minst": round(x["instructions_per_inference"] / 1e6, 1),
                "macs_m": round(x["macs"] / 1e6) if x.get("macs") else None,
            }
            for x in sorted(
                doc["results"], key=lambda x: (x["cpu"], x["backend"], x["precision"], x["model"])
            )
        ]
        out += ["", "Guest instructions per inference (millions; counts, not time):", ""]
        out.append(
            report.markdown_table(
                rows,
                [
                    ("cpu", "CPU"),
                    ("model", "model"),
                    ("input_size", "px"),
                    ("backend", "backend"),
                    ("precision", "precision"),
                    ("minst", "M instructions"),
                    ("macs_m", "MACs M"),
                    ("instructions_per_mac", "instructions / MAC"),
                ],
            )
        )
    if doc.get("targets"):
        out += ["", "Targets on Cortex-A72 (instruction-count ratios, <= 0.5):", ""]
        out.append(
            report.markdown_table(
                doc["targets"],
                [("what", "ratio of"), ("backend", "backend"), ("ratio", "ratio"), ("met", "met")],
            )
        )
    return "\n".join(out)
