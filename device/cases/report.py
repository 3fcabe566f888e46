"""`mpox-screen cases report`: how the kit does on this clinic's own patients, against lab results.

Only cases with a positive or negative result count (inconclusive ones are listed, not scored). A
case is "called positive" when the kit gave a verdict and it was "Mpox likely"; a case with a
result but no verdict ("cannot judge", poor quality) is not called positive: for a patient, a
refusal is a miss. Every rate carries its Wilson 95 % interval, and the report says so plainly
when there are too few results to say anything (fewer than MIN_EACH positives or negatives).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from device.cases.store import Case
from device.core.skin_tone import group_of, reported
from device.core.stats import rate, wilson
from device.i18n import _

MIN_EACH = 10  # positives and negatives each: below, a 95 % interval is wider than +-0.3
SCORED = ("positive", "negative")


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fn: int = 0  # a positive result the kit did not call (unlikely, or no verdict)
    tn: int = 0
    fp: int = 0

    def rates(self) -> dict:
        return {
            "sensitivity": rate(self.tp, self.tp + self.fn),
            "specificity": rate(self.tn, self.tn + self.fp),
            "ppv": rate(self.tp, self.tp + self.fp),
            "npv": rate(self.tn, self.tn + self.fn),
        }


def said(c: Case) -> str:
    return "no verdict" if c.status != "ok" else ("likely" if c.positive else "unlikely")


def confusion(scored: list[Case]) -> dict[str, dict[str, int]]:
    """Rows: what the kit said; columns: the lab's result."""
    table = {s: dict.fromkeys(SCORED, 0) for s in ("likely", "unlikely", "no verdict")}
    for c in scored:
        table[said(c)][c.result] += 1
    return table


def counts(scored: list[Case]) -> Counts:
    """Called positive: "likely"; a refusal, like "unlikely", is not."""
    t = confusion(scored)
    missed = {r: t["unlikely"][r] + t["no verdict"][r] for r in SCORED}
    return Counts(
        t["likely"]["positive"], missed["positive"], missed["negative"], t["likely"]["negative"]
    )


def unrecorded(c: Case) -> bool:
    """A verdict saved by a kit before cases recorded the decision (a migrated store): what the
    screen said is not known as data, so the case is not scored."""
    return c.status == "ok" and c.positive is None


def summary(cases: list[Case]) -> dict:
    """The report as data (the `--json` object: stable English keys)."""
    scored = [c for c in cases if c.result in SCORED and not unrecorded(c)]
    n = counts(scored)
    out = {"n": len(scored), **n.rates(), "confusion": confusion(scored)}
    out["positives"], out["negatives"] = n.tp + n.fn, n.tn + n.fp
    out["enough"] = min(out["positives"], out["negatives"]) >= MIN_EACH
    out["cases"] = len(cases)
    out["inconclusive"] = sum(c.result == "inconclusive" for c in cases)
    out["no_result"] = sum(not c.result for c in cases)
    out["decision_not_recorded"] = sum(c.result in SCORED and unrecorded(c) for c in cases)
    out["cannot_judge_rate"] = _share(cases, "cannot_judge")
    out["poor_quality_rate"] = _share(cases, "poor_quality")
    out["by_bundle"] = _by(scored, [f"{c.bundle} {c.bundle_version}" for c in scored])
    out["by_skin_tone"] = _by(scored, *reported([group_of(c.ita) for c in scored]))
    return out


def _share(cases: list[Case], status: str) -> dict:
    return rate(sum(c.status == status for c in cases), len(cases))


def _by(scored: list[Case], keys: list[str], order: list[str] | None = None) -> dict:
    """Per group (`keys`: each case's), in `order`, else by name."""
    groups: dict[str, list[Case]] = defaultdict(list)
    for c, key in zip(scored, keys, strict=True):
        groups[key].append(c)
    return {k: {"n": len(groups[k]), **counts(groups[k]).rates()} for k in order or sorted(groups)}


def text(s: dict) -> str:
    """The report for a person, in the kit's language."""
    lines = [
        _("{n} cases with a lab result ({pos} positive, {neg} negative) of {cases} saved; "
          "{inconclusive} inconclusive, {none} without a result yet").format(
            n=s["n"], pos=s["positives"], neg=s["negatives"], cases=s["cases"],
            inconclusive=s["inconclusive"], none=s["no_result"]),
    ]  # fmt: skip
    if not s["enough"]:
        lines.append(
            _("Too few results to say: {pos} positives and {neg} negatives (at least {least} "
              "of each).").format(pos=s["positives"], neg=s["negatives"], least=MIN_EACH)
        )  # fmt: skip
    for key, name in (("sensitivity", _("sensitivity")), ("specificity", _("specificity")),
                      ("ppv", _("PPV")), ("npv", _("NPV"))):  # fmt: skip
        lines.append(f"  {name}: {_rate(s[key])}")
    lines.append("  " + _("cannot judge: {rate}").format(rate=_rate(s["cannot_judge_rate"])))
    lines.append("  " + _("poor quality: {rate}").format(rate=_rate(s["poor_quality_rate"])))
    lines.append(_("Kit said / lab result: positive, negative"))
    for said, row in s["confusion"].items():
        lines.append(f"  {said:10s} {row['positive']:5d} {row['negative']:5d}")
    for title, part in ((_("By model version"), "by_bundle"), (_("By skin tone"), "by_skin_tone")):
        lines.append(title)
        for name, g in s[part].items():
            lines.append(
                f"  {name}: n={g['n']}, {_('sensitivity')} {_rate(g['sensitivity'])}, "
                f"{_('specificity')} {_rate(g['specificity'])}"
            )
    return "\n".join(lines)


def _rate(r: dict) -> str:
    if not r["n"]:
        return "-"
    return f"{r['value']:.2f} ({r['low']:.2f}-{r['high']:.2f}, n={r['n']})"


def reliability_png(cases: list[Case], path: Path) -> None:
    """Shown P(mpox) against the share of positive lab results, in five bins: is the kit's
    confidence honest at this clinic?"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [c for c in cases if c.result in SCORED and c.smoothed_prob is not None]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    for i in range(5):
        b = [c for c in scored if min(int(c.smoothed_prob * 5), 4) == i]
        if b:
            k = sum(c.result == "positive" for c in b)
            low, high = wilson(k, len(b))
            mean_p = sum(c.smoothed_prob for c in b) / len(b)
            ax.errorbar(
                mean_p,
                k / len(b),
                yerr=[[k / len(b) - low], [high - k / len(b)]],
                fmt="o",
                color="C0",
            )
            ax.annotate(
                str(len(b)), (mean_p, k / len(b)), textcoords="offset points", xytext=(6, 4)
            )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel=_("P(mpox) shown"),
        ylabel=_("share with a positive result"),
    )
    ax.set_title(_("Reliability at this clinic ({n} results)").format(n=len(scored)))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
