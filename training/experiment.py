"""The study reproduced: hippocampus-pretrained fine-tuning vs training from scratch, same budget and seed (any number
of pretrained arms, each tested against scratch).

Steps (each resumable; a finished run is not retrained):

1. ``pretrain``: source task, hippocampus on synthetic T1-like MR from real label maps.
2. ``finetune``: target task initialised from the pretrained weights.
3. ``scratch``: target task from random initialisation; identical data, budget, seed, augmentation.
4. Both exported as bundles and evaluated on the validation cases through the app's code path, on each case's
   own 1 mm grid: per-case DSC, HD95, ASD; paired Wilcoxon signed-rank and paired t-test.
5. ``report.md``, ``report.json`` and ``learning_curve.png``.

Convergence epoch: the first epoch at which the 3-epoch trailing mean of validation DSC reaches 95 % of that run's
best trailing mean. Also reported: the first epoch at which each run reaches the from-scratch run's converged
level (a common threshold).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
from scipy import stats

from training.config import TrainConfig
from training.metrics import summarise

logger = logging.getLogger(__name__)

STUDY = {
    "finetune": {"dsc": "0.9404 ± 0.0117", "hd95_mm": "1.81", "asd_mm": "0.60", "convergence": "within 20 epochs"},
    "scratch": {"dsc": "0.9158", "hd95_mm": "2.58", "asd_mm": "0.76", "convergence": "50+ epochs"},
    "n": 20,
}
METRICS = ("dsc", "hd95_mm", "asd_mm")


def smoothed(values: list[float], window: int = 3) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.array([v[max(0, i - window + 1): i + 1].mean() for i in range(len(v))])


def convergence_epoch(val_dice: list[float], *, fraction: float = 0.95, threshold: float | None = None) -> int | None:
    """First epoch (1-based) whose trailing-mean DSC reaches ``fraction`` of its best, or ``threshold`` if given."""
    if not val_dice:
        return None
    s = smoothed(val_dice)
    level = threshold if threshold is not None else fraction * s.max()
    hit = np.flatnonzero(s >= level)
    return int(hit[0]) + 1 if hit.size else None


def paired_tests(a: list[float], b: list[float]) -> dict:
    """Paired Wilcoxon signed-rank (two-sided, exact for small n) and paired t-test of a vs b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    out = {"n": int(a.size), "mean_difference": float((a - b).mean()) if a.size else float("nan")}
    if a.size >= 2 and np.any(a != b):
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
        out["t_test_p"] = float(stats.ttest_rel(a, b).pvalue)
    else:
        out["wilcoxon_p"] = out["t_test_p"] = float("nan")
    return out


def arm_config(target: TrainConfig, arm: str, out_root: Path, init: str | None) -> TrainConfig:
    """The target config for one arm: only name, output folder and initialisation differ between arms."""
    return dataclasses.replace(target, name=arm, out_dir=str(out_root / arm), init=init)


def describe_budget(config: TrainConfig, histories: dict[str, dict], *, training_cases: int) -> dict:
    """What the arms were trained with, for the report: network size, grid, cases, patches, device."""
    from training.train import build_network

    net = build_network(config.model, in_channels=config.in_channels, out_channels=len(config.labels))
    devices = sorted({e.get("device", "device not recorded") for h in histories.values() for e in h["history"]})
    seconds = {arm: round(sum(e.get("seconds", 0.0) for e in h["history"])) for arm, h in histories.items()}
    return {"parameters": int(sum(p.numel() for p in net.parameters())), "init_filters": config.model.init_filters,
            "spacing_mm": list(config.preprocessing.spacing_mm), "patch_size": list(config.preprocessing.patch_size),
            "training_cases": training_cases, "epochs": config.optim.epochs,
            "samples_per_epoch": config.data.samples_per_epoch, "devices": devices, "train_seconds": seconds}


#: report titles of the arms (any other arm name is shown as it is)
ARM_TITLES = {
    "finetune": "Fine-tuned (hippocampus-pretrained)",
    "finetune_msd": "Pretrained on real hippocampus MR (MSD Task04), fine-tuned",
    "finetune_synthetic": "Pretrained on synthetic hippocampus MR, fine-tuned",
    "scratch": "From scratch",
}
BASELINE = "scratch"


def _title(arm: str) -> str:
    return ARM_TITLES.get(arm, arm)


def compare(histories: dict[str, dict], evaluations: dict[str, dict], budget: dict | None = None) -> dict:
    """Numbers for the report: per-arm summaries, convergence, and paired tests of every arm against scratch.

    Args:
        histories: ``{arm: history.json}``; evaluations: ``{arm: evaluate's metrics}``, same arms, ``"scratch"`` one
            of them (the baseline of the tests and of the common convergence level).
    """
    curves = {arm: [e["val_dice"] for e in h["history"]] for arm, h in histories.items()}
    scratch_level = 0.95 * smoothed(curves[BASELINE]).max() if curves.get(BASELINE) else None
    arms = {}
    for arm, ev in evaluations.items():
        cases = ev["cases"]
        arms[arm] = {
            "summary": {m: summarise([c[m] for c in cases.values()]) for m in METRICS},
            "convergence_epoch": convergence_epoch(curves[arm]),
            "epoch_reaching_scratch_level": convergence_epoch(curves[arm], threshold=scratch_level),
            "best_epoch": histories[arm]["best_epoch"],
            "epochs": len(curves[arm]),
            "per_case": cases,
        }
    ids = sorted(evaluations[BASELINE]["cases"])
    tests = {
        arm: {m: paired_tests([evaluations[arm]["cases"][i][m] for i in ids],
                              [evaluations[BASELINE]["cases"][i][m] for i in ids]) for m in METRICS}
        for arm in evaluations if arm != BASELINE
    }
    return {"arms": arms, "tests": tests, "validation_cases": ids, "study": STUDY, "budget": budget,
            "scratch_converged_level": scratch_level,
            "train_loss_curves": {arm: [e["train_loss"] for e in h["history"]] for arm, h in histories.items()}}


def differences(result: dict) -> list[str]:
    """Plain sentences on where this run differs from the study (generated from the figures, not written by hand)."""
    arms, tests = result["arms"], result["tests"]
    sc = arms[BASELINE]["summary"]
    n = len(result["validation_cases"])
    b = result.get("budget")
    trained = (
        f"a {b['parameters'] / 1e6:.1f} M-parameter SegResNet ({b['init_filters']} filters) on {b['training_cases']} "
        f"BraTS cases at {b['spacing_mm'][0]:g} mm for {b['epochs']} epochs of {b['samples_per_epoch']} patches "
        f"of {'x'.join(map(str, b['patch_size']))} voxels ({b['epochs'] * b['samples_per_epoch']} in all), on "
        f"{', '.join(b['devices'])}" if b else "the configured network and budget")
    transfer = [a for a in arms if a != BASELINE]
    best = max(transfer, key=lambda a: arms[a]["summary"]["dsc"]["mean"])
    out = [
        f"- **Accuracy level.** Best transfer-learned arm ({_title(best)}) DSC "
        f"{arms[best]['summary']['dsc']['mean']:.3f} here against 0.940 in the study; from scratch "
        f"{sc['dsc']['mean']:.3f} against 0.916. HD95 {arms[best]['summary']['hd95_mm']['mean']:.1f} mm against "
        f"1.81 mm. Each arm trains {trained}; the study trained on its own patients.",
    ]
    if sc["dsc"]["mean"] >= arms[best]["summary"]["dsc"]["mean"]:
        out.append("- **Scratch wins here**: no transfer-learned arm beats training from scratch on mean DSC.")
    loss = result.get("train_loss_curves")
    target = float(np.mean(loss[BASELINE][-3:])) if loss else None
    for arm in transfer:
        ft, t = arms[arm]["summary"], tests[arm]
        p = t["dsc"]["wilcoxon_p"]
        cf, cs = arms[arm]["convergence_epoch"], arms[BASELINE]["convergence_epoch"]
        higher = "higher" if ft["dsc"]["mean"] > sc["dsc"]["mean"] else "lower"
        text = (f"- **{_title(arm)} against scratch.** DSC {higher}"
                f" by {abs(ft['dsc']['mean'] - sc['dsc']['mean']):.3f} on average; paired Wilcoxon P = {p:.3g}, "
                f"paired t P = {t['dsc']['t_test_p']:.3g} over {n} cases: "
                + ("significant at 0.05, as in the study. " if p < 0.05 else
                   "**not significant** at 0.05, unlike the study (P < 0.05 with 20 patients). ")
                + f"HD95 {'lower' if ft['hd95_mm']['mean'] < sc['hd95_mm']['mean'] else 'higher'}, ASD "
                f"{'lower' if ft['asd_mm']['mean'] < sc['asd_mm']['mean'] else 'higher'}. Convergence epoch {cf} "
                f"against {cs} from scratch"
                + (" (pretraining did not speed convergence by this report's definition)"
                   if cf is not None and cs is not None and cf >= cs else "") + ".")
        if loss:
            reach = next((i + 1 for i, v in enumerate(smoothed(loss[arm])) if v <= target), None)
            own = next((i + 1 for i, v in enumerate(smoothed(loss[BASELINE])) if v <= target), None)
            text += (f" Its training loss reaches scratch's final level ({target:.3f}) at epoch {reach}, scratch's own "
                     f"at epoch {own}.")
        out.append(text)
    return out


def _fmt(s: dict, digits: int) -> str:
    return "n/a" if s["n"] == 0 else f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def write_report(result: dict, out_root: Path, *, pretrain: dict | None, command: str,
                 split: str = "training/splits/brats2018_34.json") -> None:
    """``report.md`` and ``report.json`` (the figures); the learning curves are drawn by :func:`plot_curves`.

    Args:
        pretrain: ``{arm: the source task's history.json}`` for the pretrained arms (or one history, for
            ``"finetune"``).
    """
    arms, tests = result["arms"], result["tests"]
    order = [a for a in arms if a != BASELINE] + [BASELINE]
    if pretrain is not None and "history" in pretrain:
        pretrain = {"finetune": pretrain}
    lines = [
        "# Transfer learning from hippocampus to glioblastoma GTV: the experiment",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Validation cases (n = {len(result['validation_cases'])}, fixed in `{split}`): "
        + ", ".join(result["validation_cases"]),
        "",
        "Metrics on each case's own 1 mm grid, through the app's steps (brain extraction, resampling to the model",
        "grid, inference, resampling back, post-processing); mean ± SD over cases. P values: paired, against scratch.",
        "",
        "| | DSC | HD95 (mm) | ASD (mm) | convergence epoch | epoch reaching scratch level | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm in order:
        a = arms[arm]
        lines.append(
            f"| {_title(arm)} | {_fmt(a['summary']['dsc'], 4)} | {_fmt(a['summary']['hd95_mm'], 2)} | "
            f"{_fmt(a['summary']['asd_mm'], 2)} | {a['convergence_epoch']} of {a['epochs']} | "
            f"{a['epoch_reaching_scratch_level']} | {a['best_epoch']} |"
        )
    for arm in order[:-1]:
        lines.append(
            f"| P vs scratch, {_title(arm)}: Wilcoxon / paired t | "
            + " | ".join(f"{tests[arm][m]['wilcoxon_p']:.3g} / {tests[arm][m]['t_test_p']:.3g}" for m in METRICS)
            + " | | | |"
        )
    s = STUDY
    lines += [
        f"| Study, fine-tuned (n = {s['n']}) | {s['finetune']['dsc']} | {s['finetune']['hd95_mm']} | "
        f"{s['finetune']['asd_mm']} | {s['finetune']['convergence']} | | |",
        f"| Study, from scratch | {s['scratch']['dsc']} | {s['scratch']['hd95_mm']} | {s['scratch']['asd_mm']} | "
        f"{s['scratch']['convergence']} | | |",
        "",
        "## Where this result differs from the study's",
        "",
        *differences(result),
        "",
        "![learning curves](learning_curve.png)",
        "",
        "## Per case",
        "",
        "| case | GTV cm3 | " + " | ".join(f"DSC {a}" for a in order) + " | " + " | ".join(f"HD95 {a}" for a in order)
        + " |",
        "|---|---|" + "---|" * (2 * len(order)),
    ]
    for cid in result["validation_cases"]:
        per = [arms[a]["per_case"][cid] for a in order]
        lines.append(f"| {cid} | {per[0]['ref_cm3']:.1f} | " + " | ".join(f"{c['dsc']:.4f}" for c in per) + " | "
                     + " | ".join(f"{c['hd95_mm']:.2f}" for c in per) + " |")
    if pretrain:
        lines += ["", "## Source tasks", ""]
        for arm, hist in pretrain.items():
            lines.append(f"- {_title(arm)}: {hist.get('task', 'hippocampus')} source task, best validation Dice "
                         f"{hist['best_val_dice']:.4f} at epoch {hist['best_epoch']} of {len(hist['history'])} "
                         "(held-out source cases).")
    (out_root / "report.md").write_text("\n".join(lines) + "\n")
    (out_root / "report.json").write_text(json.dumps({**result, "pretrain": pretrain, "command": command}, indent=2,
                                                     default=float))


def plot_curves(histories: dict[str, dict], path: Path) -> None:
    """Validation DSC and training loss per epoch for each arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.5))
    for arm, h in histories.items():
        ep = [e["epoch"] for e in h["history"]]
        ax1.plot(ep, [e["val_dice"] for e in h["history"]], label=arm)
        ax2.plot(ep, [e["train_loss"] for e in h["history"]], label=arm)
        colour = ax1.lines[-1].get_color()
        conv = convergence_epoch([e["val_dice"] for e in h["history"]])
        if conv:
            ax1.axvline(conv, ls=":", color=colour)
        averaged = [e for e in h["history"] if "val_dice_average" in e]
        if averaged:
            ax1.plot([e["epoch"] for e in averaged], [e["val_dice_average"] for e in averaged], ls="--", lw=2,
                     color=colour, label=f"{arm}: weight average")
    ax1.set(xlabel="epoch", ylabel="validation DSC (model grid)")
    ax1.set_title("Validation DSC (dotted: convergence epoch; dashed: weight average)", fontsize=10)
    ax2.set(xlabel="epoch", ylabel="Dice + BCE loss", title="Training loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    handles, labels = ax1.get_legend_handles_labels()
    rows = (len(labels) + 1) // 2
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.035 * rows + 0.02, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
