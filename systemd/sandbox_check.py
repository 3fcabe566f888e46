#!/usr/bin/env python3
"""Run a command under the service unit's seccomp sandbox, without systemd.

    python systemd/sandbox_check.py [--unit systemd/mpox-screen.service] -- COMMAND [ARGS...]

Reads the unit's SystemCallFilter= lines (allow-list mode, groups expanded with
`systemd-analyze syscall-filter`), SystemCallErrorNumber=, MemoryDenyWriteExecute= and
RestrictAddressFamilies=, installs the same kind of filter systemd 252 installs (libseccomp;
blocked calls fail with the unit's errno; no mmap that is writable and executable, no mprotect,
pkey_mprotect or shmat that adds execute permission; socket() only for the allowed address
families), then execs COMMAND. If the kit's screening path calls anything the unit blocks, the
command fails here the way it would fail under systemd on the kit.

Needs libseccomp's Python binding (Debian: python3-seccomp); the system interpreter's copy is used
when the running interpreter (a venv) has none. Linux only.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
SYSTEM_PACKAGES = "/usr/lib/python3/dist-packages"
ARG_GUARDED = {"mmap", "mmap2", "mprotect", "pkey_mprotect", "shmat", "socket"}


def import_seccomp():
    try:
        import seccomp
    except ImportError:
        sys.path.append(SYSTEM_PACKAGES)  # a venv: borrow the system interpreter's binding
        try:
            import seccomp
        finally:
            sys.path.remove(SYSTEM_PACKAGES)
    return seccomp


def unit_sections(unit: Path) -> dict[str, dict[str, list[str]]]:
    """Every section's assignments in file order, as systemd reads them: a key may repeat, and
    an empty assignment resets its list. (The tests read the unit with this too.)"""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        if "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if value:
            current.setdefault(key, []).append(value)
        else:
            current[key] = []
    return sections


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """The [Service] section: what the sandbox is built from."""
    return unit_sections(unit).get("Service", {})


def expand(name: str, seen: set[str] | None = None) -> set[str]:
    """A syscall group (or a plain name) as the set of syscall names systemd means by it."""
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            calls |= expand(item, seen)
    return calls


def allowed_syscalls(filters: list[str]) -> set[str]:
    if not filters or filters[0].startswith("~"):
        raise SystemExit("sandbox_check: the unit must use an allow-list SystemCallFilter=")
    allowed: set[str] = set()
    for entry in filters:
        deny = entry.startswith("~")
        names = set()
        for item in entry.lstrip("~").split():
            names |= expand(item)
        allowed = allowed - names if deny else allowed | names
    return allowed


def build_filter(settings: dict[str, list[str]]):
    seccomp = import_seccomp()
    errno_name = (settings.get("SystemCallErrorNumber") or ["EPERM"])[-1]
    blocked = seccomp.ERRNO(getattr(errno, errno_name))
    flt = seccomp.SyscallFilter(defaction=blocked)
    allowed = allowed_syscalls(settings.get("SystemCallFilter", []))
    mdwe = (settings.get("MemoryDenyWriteExecute") or ["no"])[-1] in ("yes", "true", "1", "on")
    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()

    def rule(action, name, *args) -> None:
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            flt.add_rule(action, name, *args)  # skipped: not a syscall on this architecture

    for name in sorted(allowed - ARG_GUARDED):
        rule(seccomp.ALLOW, name)
    for name in ("mmap", "mmap2"):
        if name in allowed:
            if mdwe:  # allowed unless both writable and executable
                rule(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE, 0))
                rule(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
            else:
                rule(seccomp.ALLOW, name)
    for name in ("mprotect", "pkey_mprotect"):
        if name in allowed:
            if mdwe:
                rule(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
            else:
                rule(seccomp.ALLOW, name)
    if "shmat" in allowed:
        if mdwe:
            rule(seccomp.ALLOW, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, 0))
        else:
            rule(seccomp.ALLOW, "shmat")
    if "socket" in allowed:
        if families and not families[0].startswith("~"):
            for fam in families:
                rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, getattr(socket, fam)))
        else:
            rule(seccomp.ALLOW, "socket")
    return flt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--unit", type=Path, default=Path(__file__).resolve().parent / "mpox-screen.service"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    build_filter(unit_settings(args.unit)).load()
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
