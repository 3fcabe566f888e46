"""The leave-one-collection-out judgement of the "cannot judge" gate (`train_host.lesion_gate`)
as Markdown and a PNG, beside its JSON."""

from __future__ import annotations

import json
from pathlib import Path


def _pct(r: dict | None) -> str:
    if not r or r["value"] is None:
        return "-"
    return f"{r['value']:.1%} ({r['low']:.1%}-{r['high']:.1%}, n={r['n']})"


def _tones(by_tone: dict) -> str:
    return "; ".join(f"{g} {r['value']:.0%} of {r['n']}" for g, r in by_tone.items())


def markdown(doc: dict) -> str:
    t = doc["targets"]
    lines = [
        f"# Cannot judge, leave one collection out: {doc['model']}",
        "",
        f"Targets (issue 28): lesion photos refused <= {t['lesion_refused_max']:.0%} per "
        f'collection and skin-tone group; `nonskin/objects` refused or not "Mpox likely" >= '
        f'{t["objects_not_likely"]:.0%}; plain skin not "Mpox likely" >= '
        f"{t['plain_not_likely']:.0%}. A refusal: the score over its limit or no skin in the "
        "square. Fitted on: *its own*, the bundle's gate before this fit (for a bundle that has "
        "one); *without it*, every collection but the one judged; *every collection*, the fit "
        "a new version ships. Objects: the half of `nonskin/objects` the lesion check never "
        "learned from. Darker copies: Lab L* x0.8, x0.65 or x0.5; darkest: x0.35.",
        "",
        "| gate fitted on | judged on (left out) | refused: whole | crops | darker / darkest | "
        "by skin tone (whole) | MSID held-out refused | objects refused or unlikely | "
        "plain skin not likely | library non-skin refused |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        left = r.get("left_out_refused", {})
        lines.append(
            f"| {r['fit']} | {r['left_out'] or '-'} | {_pct(left.get('whole'))} | "
            f"{_pct(left.get('crop'))} | {_pct(left.get('darker'))} / "
            f"{_pct(left.get('darkest'))} | "
            f"{_tones(r.get('left_out_by_tone', {})) or '-'} | {_pct(r['msid_test_refused'])} | "
            f"{_pct(r.get('objects', {}).get('not_likely'))} | "
            f"{_pct(r.get('skin_no_lesion', {}).get('not_likely'))} | "
            f"{_pct(r['library_non_skin_refused'])} |"
        )
    lines += [
        "",
        "MSID held-out photos by skin tone, and the darkening test (held-out mpox photos "
        "the gate judges, Lab lightness scaled down; refused at each step):",
        "",
    ]
    lines += [
        "| gate fitted on | left out | MSID held-out by tone | darkened x0.8 / x0.65 / x0.5 |",
        "|---|---|---|---|",
    ]
    for r in doc["rows"]:
        steps = " / ".join(_pct(v) for v in r["darkened_mpox_refused"].values())
        lines.append(
            f"| {r['fit']} | {r['left_out'] or '-'} | {_tones(r['msid_test_by_tone'])} | {steps} |"
        )
    return "\n".join(lines) + "\n"


def png(doc: dict, path: Path) -> None:
    """Left: each left-out collection's whole photos refused, per skin-tone group, per fit;
    right: objects refused or unlikely and plain skin not likely, with the targets."""
    from benchmarks.plots import pyplot

    plt = pyplot()
    if plt is None:
        return
    rows = [r for r in doc["rows"] if r["left_out"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    labels = [f"{r['left_out']}\n{r['fit']}" for r in rows]
    groups = list(dict.fromkeys(g for r in rows for g in r["left_out_by_tone"]))
    width = 0.8 / max(len(groups), 1)
    for j, g in enumerate(groups):
        ys = [r["left_out_by_tone"].get(g, {}).get("value") or 0.0 for r in rows]
        a.bar([i + j * width for i in range(len(rows))], ys, width, label=g)
    a.axhline(doc["targets"]["lesion_refused_max"], color="k", ls="--", lw=1, label="target")
    a.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], labels, fontsize=7)
    a.set_ylabel("lesion photos refused (whole)")
    a.legend(fontsize=7, ncol=2)
    fits = doc["rows"]
    for key, target, marker in (
        ("objects", "objects_not_likely", "o"),
        ("skin_no_lesion", "plain_not_likely", "s"),
    ):
        ys = [r.get(key, {}).get("not_likely", {}).get("value") for r in fits]
        b.plot(range(len(fits)), ys, marker, label=f"{key}: not likely")
        b.axhline(doc["targets"][target], ls="--", lw=1)
    b.set_xticks(
        range(len(fits)),
        [f"{r['fit']}\n{r['left_out'] or 'all'}" for r in fits],
        fontsize=6,
        rotation=90,
    )
    b.set_ylim(0, 1.02)
    b.legend(fontsize=7)
    fig.suptitle(f"Cannot judge, leave one collection out: {doc['model']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(doc: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    png(doc, out.with_suffix(".png"))
