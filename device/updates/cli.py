"""`mpox-screen bundle ...`: sign model bundles on the host, install and roll them back on a kit."""

from __future__ import annotations

from pathlib import Path

from device import DeviceError
from device.core.bundle import load_bundle
from device.updates.signing import DEFAULT_KEY, KEYS_DIR, keygen, sign, signed_by
from device.updates.store import STORE, BundleStore, point_service_at


def add_arguments(p) -> None:
    p.add_argument("--keys", type=Path, default=KEYS_DIR, help=f"trusted keys (default {KEYS_DIR})")
    p.add_argument("--store", type=Path, default=STORE, help=f"installed bundles (default {STORE})")
    cmd = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    cmd.add_parser("keygen", help="a new Ed25519 key pair (host)").add_argument(
        "key",
        type=Path,
        nargs="?",
        default=DEFAULT_KEY,
        help=f"private key (default {DEFAULT_KEY})",
    )
    q = cmd.add_parser("sign", help="sign a bundle's manifest (host)")
    q.add_argument("bundle", type=Path)
    q.add_argument("--key", type=Path, required=True, help="the private key (PEM)")
    cmd.add_parser("verify", help="check a bundle and its signature").add_argument(
        "bundle", type=Path
    )
    q = cmd.add_parser("install", help="install a signed bundle folder or .tar(.gz) archive")
    q.add_argument("source", type=Path)
    q.add_argument("--allow-downgrade", action="store_true", help="accept an older bundle")
    q.add_argument("--allow-unsigned", action="store_true", help="accept a bundle not signed")
    q.add_argument("--no-restart", action="store_true", help="leave the service alone")
    cmd.add_parser("list", help="installed bundles, the current one marked")
    q = cmd.add_parser("rollback", help="go back to the previous bundle")
    q.add_argument("--no-restart", action="store_true", help="leave the service alone")


def run(args) -> int:
    """OSError from a store or stick (read-only, full, a file where a folder should be) is one
    line like every other refusal."""
    try:
        return _run(args)
    except OSError as e:
        where = e.filename or args.store
        raise DeviceError(f"{where}: {e.strerror or e}") from None


def _run(args) -> int:
    c = args.bundle_command
    if c == "keygen":
        pub = keygen(args.key)
        print(f"private key {args.key} (keep it off the kits), public key {pub}")
    elif c == "sign":
        load_bundle(args.bundle)
        print(f"signed: {sign(args.bundle, args.key)}")
    elif c == "verify":
        bundle = load_bundle(args.bundle)
        signer = signed_by(args.bundle, args.keys)
        if signer is None:
            raise DeviceError(f"bundle {args.bundle}: not signed")
        print(f"{bundle.name} {bundle.manifest.version}: files ok, signed by {signer}")
    elif c == "install":
        store = BundleStore(args.store, args.keys)
        dest, signer = store.install(args.source, args.allow_downgrade, args.allow_unsigned)
        print(f"installed {dest} ({'signed by ' + signer if signer else 'UNSIGNED'}); now current")
        if not args.no_restart:
            print(point_service_at(args.store))
    elif c == "list":
        for i in BundleStore(args.store, args.keys).installed():
            mark = "*" if i.current else ("-" if i.previous else " ")
            sig = f"signed by {i.signed_by}" if i.signed_by else "unsigned"
            print(f"{mark} {i.path.name:45s} {i.version:24s} {i.created.isoformat()}  {sig}")
    elif c == "rollback":
        back = BundleStore(args.store, args.keys).rollback()
        print(f"current is now {back}")
        if not args.no_restart:
            print(point_service_at(args.store))
    return 0
