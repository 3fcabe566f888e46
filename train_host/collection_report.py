"""Reports of the collection-shift protocol (`train_host.collection_shift`): the comparison table
in the selection rule's order, its PNG, and the per-collection report of `mpox-train evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from train_host.collection_shift import conditions, selection_key, worst_auc


def _ci(m: dict, key: str) -> str:
    lo, hi = m.get(f"{key}_ci95", [float("nan")] * 2)
    return f"{m[key]:.2f} ({lo:.2f}-{hi:.2f})"


def _seen(collection: dict, cell: str) -> str:
    """A collection the model was trained on is shown, not judged: in brackets."""
    return f"[trained on: {cell}]" if collection.get("trained_on") else cell


def markdown(results: list[dict], names: list[str]) -> str:
    cols = " | ".join(f"spec. on {n} at thr. (95 % CI)" for n in names)
    kit = " | ".join(f"kit mpox vs {n}: AUC" for n in names)
    lines = [
        "| model | worst kit AUC | kit-framing AUC (95 % CI) | kit-framing sens. / spec. | "
        f"{cols} | {kit} | MSID held-out AUC | threshold |",
        "|---" * (6 + 2 * len(names)) + "|",
    ]
    ordered = sorted(results, key=selection_key, reverse=True)
    for r in ordered:
        k = r["kit_framing"]
        cs = [r["collections"][n] for n in names]
        per = " | ".join(_seen(c, _ci(c["as_is"], "specificity")) for c in cs)
        vs = " | ".join(
            _seen(c, _ci(c["kit_mpox_vs"], "auc")) if "kit_mpox_vs" in c else "-" for c in cs
        )
        lines.append(
            f"| {r['model']} | {worst_auc(r):.2f} | {_ci(k, 'auc')} | "
            f"{k['sensitivity']:.2f} / {k['specificity']:.2f} "
            f"| {per} | {vs} | {_ci(r['msid_heldout'], 'auc')} | {r['threshold']:.3f} |"
        )
    lines += _by_condition(ordered, names)
    lines += by_tone_lines(ordered, names)
    if any(c.get("trained_on") for r in results for c in r["collections"].values()):
        lines.append(
            "\n[trained on: ...]: the model saw that collection; shown, not judged. Its row "
            "follows every row judged on more collections (a minimum over fewer is an easier bar)."
        )
    return "\n".join(lines) + "\n"


def _by_condition(results: list[dict], names: list[str]) -> list[str]:
    """At the threshold, per condition (source folder): sensitivity on mpox, specificity on the
    rest; only rows scored with conditions (earlier rows of the table were not)."""
    rows = [r for r in results if "msid_conditions" in r]
    if not rows:
        return []
    cols = [(None, c) for c in conditions(rows[0])]
    cols += [(n, c) for n in names for c in conditions(rows[0], n)]

    def cell(r: dict, name: str | None, cond: str) -> str:
        m = conditions(r, name).get(cond)
        if m is None:
            return "-"
        text = _ci(m, "sensitivity" if m["positives"] else "specificity")
        return _seen(r["collections"][name], text) if name else text

    head = " | ".join(
        f"{n or 'MSID held-out'}: {c} (n={conditions(rows[0], n)[c]['n']})" for n, c in cols
    )
    lines = [
        "\nAt the threshold, by condition (the source folder): sensitivity on mpox, specificity "
        "on every other condition (95 % CI).\n",
        f"| model | {head} |",
        "|---" * (1 + len(cols)) + "|",
    ]
    lines += [f"| {r['model']} | " + " | ".join(cell(r, *col) for col in cols) + " |" for r in rows]
    return lines


def _tone_parts(r: dict, names: list[str]) -> list[tuple[str, dict]]:
    parts = [
        ("MSID held-out photos", r.get("msid_tones")),
        ("kit-framed crops", r.get("kit_tones")),
    ]
    parts += [(n, r["collections"][n].get("tones")) for n in names if n in r["collections"]]
    return [(label, t) for label, t in parts if t]


def by_tone_lines(results: list[dict], names: list[str]) -> list[str]:
    """At the threshold, per skin-tone group (device.core.skin_tone): one line per model, set and
    group; only rows scored with tones."""
    rows = [r for r in results if r.get("kit_tones")]
    if not rows:
        return []
    lines = [
        "\nAt the threshold, by skin tone (ITA of the square the model reads, Chardon's groups; a "
        "group under 20 photos merged with a neighbour): sensitivity on mpox, specificity on the "
        "rest (95 % CI).\n",
        "| model | photos | tone (median ITA) | n | sensitivity | specificity |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        for label, tones in _tone_parts(r, names):
            for group, m in tones.items():
                ita = "" if m.get("ita_median") is None else f" ({m['ita_median']:.0f} deg)"
                sens = _ci(m, "sensitivity") if m["positives"] else "-"
                spec = _ci(m, "specificity") if m["positives"] < m["n"] else "-"
                lines.append(
                    f"| {r['model']} | {label} | {group}{ita} | {m['n']} | {sens} | {spec} |"
                )
    return lines


PLOTTED = 8  # bars of more models than this are unreadable; the table has every row


def plot(path: Path, results: list[dict], names: list[str]) -> None:
    """Per-collection specificity at the threshold and kit-framing AUC, one bar group a model
    (the first `PLOTTED` by the selection rule)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = sorted(results, key=selection_key, reverse=True)[:PLOTTED]

    labels = ["kit-framing AUC", *(f"spec. {n}" for n in names), "MSID AUC"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(labels), 3.6))
    width = 0.8 / max(1, len(results))
    for j, r in enumerate(results):
        ms = [r["kit_framing"], *(r["collections"][n]["as_is"] for n in names), r["msid_heldout"]]
        keys = ["auc", *(["specificity"] * len(names)), "auc"]
        vals = [m[k] for m, k in zip(ms, keys, strict=True)]
        err = np.array([m.get(f"{k}_ci95", [v, v]) for m, k, v in zip(ms, keys, vals, strict=True)])
        x = np.arange(len(labels)) + j * width
        bars = ax.bar(x, vals, width, label=r["model"])
        seen = [False, *(r["collections"][n].get("trained_on", False) for n in names), False]
        for bar in (b for b, s in zip(bars, seen, strict=True) if s):
            bar.set_hatch("//")  # trained on: shown, not judged
        yerr = np.clip([vals - err[:, 0], err[:, 1] - vals], 0, None)  # a percentile CI may
        ax.errorbar(x, vals, yerr=yerr, fmt="none", c="k", lw=0.8)  # miss its point estimate
    ax.set_xticks(np.arange(len(labels)) + width * (len(results) - 1) / 2, labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.axhline(0.8, ls=":", c="grey", lw=0.8)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(
        f"collection-shift protocol, first {len(results)} by the rule (95 % CI)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def earlier_rows(paths: list[Path], names: list[str]) -> list[dict]:
    """Rows of earlier `collection_shift.json` files, each checked to score the same collections
    (a table mixes runs only where every row measured the same thing)."""
    from train_host import UserError

    rows = []
    for path in paths:
        try:
            found = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"--include {path}: not a collection_shift.json ({e})") from None
        for r in found:
            if not isinstance(r, dict) or sorted(r.get("collections", {})) != sorted(names):
                raise UserError(f"--include {path}: a row does not score {', '.join(names)}")
        rows += found
    return rows


def merged(*parts: list[dict]) -> list[dict]:
    """Rows by model name, a later part's row replacing an earlier one of the same name."""
    rows: dict[str, dict] = {}
    for part in parts:
        for r in part:
            rows.pop(r["model"], None)
            rows[r["model"]] = r
    return list(rows.values())


def write(out: Path, results: list[dict], names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "collection_shift.json").write_text(json.dumps(results, indent=1))
    (out / "collection_shift.md").write_text(markdown(results, names))
    plot(out / "collection_shift.png", results, names)


def write_per_collection(out: Path, model: str, res: dict) -> None:
    """collections.json, collections.md and collections.png (AUC where both classes exist,
    specificity always, with 95 % intervals)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "collections.json").write_text(json.dumps({"model": model, **res}, indent=1))
    lines = [
        f"# {model} per collection\n",
        "| collection | n | mpox | AUC (95 % CI) | sensitivity (95 % CI) | specificity (95 % CI) "
        "| flagged | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in res.items():
        auc = _ci(m, "auc") if m["positives"] and m["positives"] < m["n"] else "-"
        sens = _ci(m, "sensitivity") if m["positives"] else "-"
        spec = _ci(m, "specificity") if m["positives"] < m["n"] else "-"
        lines.append(
            f"| {name} | {m['n']} | {m['positives']} | {auc} | {sens} | {spec} | "
            f"{m['flagged']:.2f} | {m['ece']:.3f} |"
        )
    (out / "collections.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(res), 3.2))
    for j, key in enumerate(("auc", "sensitivity", "specificity")):
        vals = np.array([m[key] for m in res.values()], dtype=float)
        ci = np.array([m.get(f"{key}_ci95", [np.nan] * 2) for m in res.values()], dtype=float)
        x = np.arange(len(res)) + (j - 1) * 0.27
        ax.bar(x, np.nan_to_num(vals), 0.27, label=key)
        ok = ~np.isnan(vals)
        ax.errorbar(
            x[ok],
            vals[ok],
            yerr=[vals[ok] - ci[ok, 0], ci[ok, 1] - vals[ok]],
            fmt="none",
            c="k",
            lw=0.8,
        )
    ax.set_xticks(np.arange(len(res)), list(res), fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(f"{model} at its threshold, per collection", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "collections.png", dpi=110)
    plt.close(fig)
