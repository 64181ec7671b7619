"""The quality verdict against accuracy: every signal on every evaluated case, with its Dice and verdict, and what
each limit would flag (``python -m training quality-table``).

Reads the ``metrics.json`` of ``evaluate`` (BraTS layout), ``evaluate-dicom`` (studies with MaskTumor) and
``evaluate-brats-dicom`` (BraTS cases written as DICOM, per variant), and the same shape for hand-made poor inputs;
writes a Markdown page. A good contour is one with Dice >= 0.75, a poor one Dice < 0.5 (against the case's reference:
the BraTS tumour core, or TCIA's MaskTumor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from operators.core.steps.quality import FLAG_CODES, QualityLimits, judge

GOOD, POOR = 0.75, 0.5
COLUMNS = (  # signal, header, format
    ("slice_spacing_mm", "slice mm", "{:.1f}"),
    ("contrast_agent_recorded", "contrast", "{}"),
    ("brain_cm3", "brain cm3", "{:.0f}"),
    ("brain_edge_fraction", "brain at edge", "{:.3f}"),
    ("registration_offset_mm_FLAIR", "FLAIR offset mm", "{:.1f}"),
    ("gtv_cm3", "GTV cm3", "{:.1f}"),
    ("gtv_components", "parts", "{}"),
    ("gtv_surface_fraction", "at surface", "{:.2f}"),
    ("gtv_enhancement", "enhancement", "{:.2f}"),
    ("unsure_fraction", "unsure", "{:.2f}"),
)
#: continuous signals and the direction of their limit, with candidate limits to show what each would flag
SWEEPS = {
    "brain_edge_fraction": (">", "brain_edge_fraction_max", (0.01, 0.02, 0.05, 0.1)),
    "registration_offset_mm_FLAIR": (">", "registration_offset_mm_max", (2.5, 4.5, 6.5)),
    "gtv_components": (">", "gtv_components_max", (1, 2, 3)),
    "gtv_surface_fraction": (">", "gtv_surface_fraction_max", (0.2, 0.35, 0.5)),
    "gtv_enhancement": ("<", "gtv_enhancement_min", (0.8, 1.0, 1.3, 1.5)),
    "unsure_fraction": (">", "unsure_fraction_max", (0.3, 0.4, 0.45, 0.6)),
    "gtv_cm3": (">", "gtv_cm3_max", (100.0, 150.0)),
}


@dataclass(frozen=True)
class Row:
    source: str
    case: str
    dsc: float
    verdict: str
    flags: tuple[str, ...]
    signals: dict


def rows_of(data: dict, source: str, limits: QualityLimits) -> list[Row]:
    """The cases of one metrics file's content (any of the three evaluations' layouts), each judged again under
    ``limits`` from its recorded signals (so that the table shows what the model's current limits decide)."""
    if "studies" in data:
        groups = {source: data["studies"]}
    elif data.get("cases") and all(isinstance(v, dict) and "dsc" not in v for v in data["cases"].values()):
        groups = {f"{source} {variant}": cases for variant, cases in data["cases"].items()}  # per variant
    else:
        groups = {source: data["cases"]}
    rows = []
    for name, cases in groups.items():
        for case, entry in cases.items():
            q = entry.get("quality")
            if q is None or "dsc" not in entry:
                continue
            quality = judge(q["signals"], limits)
            rows.append(Row(name, case, float(entry["dsc"]), quality.verdict, tuple(f.code for f in quality.flags),
                            q["signals"]))
    return rows


def _fmt(value, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _flagged(row: Row, signal: str, op: str, limit: float) -> bool:
    v = row.signals.get(signal)
    return v is not None and (v > limit if op == ">" else v < limit)


def markdown(rows: list[Row], limits: QualityLimits, *, command: str, models: list[str] = ()) -> str:
    good = [r for r in rows if r.dsc >= GOOD]
    poor = [r for r in rows if r.dsc < POOR]
    lines = [
        "# Quality verdict: signals against accuracy",
        "",
        "Every case below ran through the app's path (brain extraction included)"
        + (f", with the GTV model {', '.join(models)}" if models else "") + ":",
        "",
        "```bash",
        "VAL=$(python -c \"import json; print(' '.join(json.load(open('training/splits/brats2018_34.json'))"
        "['validation']))\")",
        "python -m training evaluate --model models/glioblastoma_gtv --data ../shared/data/brats2018 --cases $VAL \\",
        "    --out work/quality/brats",
        "python -m training evaluate-brats-dicom --models models --data ../shared/data/brats2018 --cases $VAL \\",
        "    --variants thick oblique --out work/quality/bd",
        "python -m training evaluate-dicom --models models --data ../shared/data/tcia-brain-tumor-progression \\",
        "    --out work/quality/tcia",
        "python -m training evaluate-poor-inputs --models models \\",
        "    --study ../shared/data/tcia-brain-tumor-progression/PGBM-001/1992-04-02 --out work/quality/poor",
        "```",
        "",
        f"and this page was written by `{command}`.",
        "",
        f"Good contour: Dice >= {GOOD}; poor: Dice < {POOR} (BraTS: against the tumour core; TCIA and the inputs",
        "made from it: against MaskTumor, a post-operative mask). Limits are the model's (`quality` in its metadata).",
        "",
        "The verdict is the most severe flag's (`ok` without flags). Flag codes:",
        "",
        "| code | severity | meaning |",
        "|---|---|---|",
        *[f"| `{code}` | {sev} | {meaning} |" for code, (sev, meaning) in FLAG_CODES.items()],
        "",
        "The limits were chosen on these same cases (no good contour flagged, as many poor ones caught as that",
        f"allows), so the counts below are in-sample: {len(rows)} cases, few of them poor. Poor contours the verdict",
        "passes look plausible by every signal (one compact, enhancing part inside the brain, the network sure of it)",
        "and are wrong; the verdict cannot replace the clinician's review.",
        "",
        "## Verdict",
        "",
        "| | cases | ok | review | unreliable |",
        "|---|---|---|---|---|",
    ]
    for name, group in (("good (Dice >= 0.75)", good), ("middling", [r for r in rows if POOR <= r.dsc < GOOD]),
                        ("poor (Dice < 0.5)", poor), ("all", rows)):
        counts = {v: sum(r.verdict == v for r in group) for v in ("ok", "review", "unreliable")}
        lines.append(f"| {name} | {len(group)} | {counts['ok']} | {counts['review']} | {counts['unreliable']} |")
    lines += [
        "",
        f"Good contours flagged: {sum(r.verdict != 'ok' for r in good)} of {len(good)}. "
        f"Poor contours passed as ok: {sum(r.verdict == 'ok' for r in poor)} of {len(poor)}.",
        "",
        "## What each limit would flag",
        "",
        "Per signal and candidate limit: good contours it flags / poor contours it lets pass (of "
        f"{len(good)} good and {len(poor)} poor). **Bold**: the model's limit.",
        "",
        "| signal | limit | good flagged | poor passed |",
        "|---|---|---|---|",
    ]
    for signal, (op, field, candidates) in SWEEPS.items():
        chosen = getattr(limits, field)
        for limit in sorted(set(candidates) | {chosen}):
            g = sum(_flagged(r, signal, op, limit) for r in good)
            p = sum(not _flagged(r, signal, op, limit) for r in poor)
            mark = "**" if limit == chosen else ""
            lines.append(f"| {signal} | {mark}{op} {limit:g}{mark} | {g} | {p} |")
    lines += [
        "",
        "## Every case",
        "",
        "| set | case | Dice | verdict | flags | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|---|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        cells = [_fmt(r.signals.get(k), f) for k, _, f in COLUMNS]
        lines.append(f"| {r.source} | {r.case} | {r.dsc:.3f} | {r.verdict} | {', '.join(r.flags) or '-'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(inputs: list[tuple[str, Path]], out: Path, *, limits: QualityLimits, command: str) -> list[Row]:
    loaded = [(source, json.loads(Path(path).read_text())) for source, path in inputs]
    rows = [row for source, data in loaded for row in rows_of(data, source, limits)]
    # the GTV model named by the evaluate runs among the inputs (evaluate-dicom names it per study)
    models = []
    for _, d in loaded:
        for m in [d.get("model")] + [s.get("model") for s in d.get("studies", {}).values()]:
            if isinstance(m, dict) and f"{m['name']} {m['version']}" not in models:
                models.append(f"{m['name']} {m['version']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, limits, command=command, models=models))
    return rows
