"""`mpox-screen`: the kit's command line. User errors print one line and exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from device import DeviceError, __version__


def _threads(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpox-screen",
        description="Mpox skin-lesion screening kit. A screening aid, not a diagnosis.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("classify", help="screen stored photos (files or folders)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="model bundle folder (default: models/DEFAULT or $MPOX_BUNDLE)",
    )
    p.add_argument("--backend", choices=["onnx", "tflite"], default="onnx")
    p.add_argument("--precision", choices=["int8", "fp32"], default="int8")
    p.add_argument("--threads", type=_threads, default=2, help="inference threads")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.add_argument("--cam-out", type=Path, default=None, help="write heat-map overlays here")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "classify":
            from device.classify import ClassifyOptions, classify

            opts = ClassifyOptions(
                paths=args.paths,
                bundle=args.bundle,
                backend=args.backend,
                precision=args.precision,
                threads=args.threads,
                json=args.json,
                cam_out=args.cam_out,
            )
            return classify(opts)
        build_parser().print_help()
        return 2
    except DeviceError as e:
        print(f"mpox-screen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
