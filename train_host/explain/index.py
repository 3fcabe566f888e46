"""The index page of a folder's panels (markdown, readable on GitHub or any viewer): sorted by
confidence, highest first, with the misclassified images first when the true classes are known."""

from __future__ import annotations

from pathlib import Path


def order(records: list[dict]) -> list[dict]:
    """Misclassified (true class known and different) first, then by confidence, descending."""
    return sorted(records, key=lambda r: (r.get("correct") is not False, -r["prob"], r["name"]))


def write_index(path: Path, records: list[dict], summary: dict) -> None:
    """`records`: name, file, panel, label, prob, true, correct, deletion_auc (method -> AUC)."""
    rows = order(records)
    known = [r for r in rows if r["true"] is not None]
    wrong = [r for r in known if not r["correct"]]
    lines = [
        "# Explanations",
        "",
        f"{len(rows)} image(s), model `{summary['model']}` (`{summary['checkpoint']}`).",
    ]
    if known:
        lines.append(
            f"True class known for {len(known)}: {len(wrong)} misclassified, listed first."
        )
    lines += [
        "Sorted by the probability of the decided class, highest first. "
        "A screening aid, not a diagnosis.",
        "",
    ]
    deletion = summary.get("deletion") or {}
    if deletion:
        lines += ["Deletion AUC (mean over these images; lower = the map is more faithful):", ""]
        lines += ["| map | AUC | beats random on |", "|---|---|---|"]
        for name, d in deletion.items():
            wins = f"{d['beats_random']:.0%}" if "beats_random" in d else "-"
            title = summary.get("titles", {}).get(name, "random order")
            lines.append(f"| {title} | {d['auc_mean']:.3f} | {wins} |")
        lines += ["", "Curves: [deletion.png](deletion.png); numbers: `explain.json`.", ""]
    lines += ["| # | file | decision | P | true class | panel |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        true = "?" if r["true"] is None else r["true"]
        mark = " **(wrong)**" if r["correct"] is False else ""
        lines.append(
            f"| {i} | `{r['file']}` | {r['label']}{mark} | {r['prob']:.3f} | {true} | "
            f"![{r['name']}]({r['panel']}) |"
        )
    path.write_text("\n".join(lines) + "\n")
