"""`mpox-train models`: List registered models with parameters and MACs."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> None:
    from train_host.profile import profile_all

    rows = profile_all(args.num_classes)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'model':<20} {'input':>5} {'params (M)':>10} {'MACs (M)':>9}  pretrained")
    for r in rows:
        print(
            f"{r['name']:<20} {r['input_size']:>5} {r['params'] / 1e6:>10.3f} "
            f"{r['macs'] / 1e6:>9.1f}  {r['pretrained']}"
        )
