"""The study reproduced: hippocampus-pretrained fine-tuning vs training from scratch, same budget and seed.

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


def compare(histories: dict[str, dict], evaluations: dict[str, dict], budget: dict | None = None) -> dict:
    """Numbers for the report: per-arm summaries, convergence, paired tests (finetune vs scratch)."""
    curves = {arm: [e["val_dice"] for e in h["history"]] for arm, h in histories.items()}
    scratch_level = 0.95 * smoothed(curves["scratch"]).max() if curves.get("scratch") else None
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
    ids = sorted(evaluations["finetune"]["cases"])
    tests = {
        m: paired_tests([evaluations["finetune"]["cases"][i][m] for i in ids],
                        [evaluations["scratch"]["cases"][i][m] for i in ids])
        for m in METRICS
    }
    return {"arms": arms, "tests": tests, "validation_cases": ids, "study": STUDY, "budget": budget,
            "scratch_converged_level": scratch_level,
            "train_loss_curves": {arm: [e["train_loss"] for e in h["history"]] for arm, h in histories.items()}}


def differences(result: dict) -> list[str]:
    """Plain sentences on where this run differs from the study (generated from the figures, not written by hand)."""
    arms, tests = result["arms"], result["tests"]
    ft, sc = arms["finetune"]["summary"], arms["scratch"]["summary"]
    n = len(result["validation_cases"])
    b = result.get("budget")
    trained = (
        f"a {b['parameters'] / 1e6:.1f} M-parameter SegResNet ({b['init_filters']} filters) on {b['training_cases']} "
        f"BraTS 2018 cases at {b['spacing_mm'][0]:g} mm for {b['epochs']} epochs of {b['samples_per_epoch']} patches "
        f"of {'x'.join(map(str, b['patch_size']))} voxels ({b['epochs'] * b['samples_per_epoch']} in all), on "
        f"{', '.join(b['devices'])}" if b else "the configured network and budget")
    out = [
        f"- **Accuracy level.** Fine-tuned DSC {ft['dsc']['mean']:.3f} here against 0.940 in the study; from scratch "
        f"{sc['dsc']['mean']:.3f} against 0.916. HD95 {ft['hd95_mm']['mean']:.1f} mm against 1.81 mm. This run trains "
        f"{trained}; the study trained on its own patients.",
    ]
    better = ft["dsc"]["mean"] > sc["dsc"]["mean"]
    p = tests["dsc"]["wilcoxon_p"]
    out.append(
        f"- **Effect of pretraining on DSC.** Fine-tuned is {'higher' if better else 'lower'} by "
        f"{abs(ft['dsc']['mean'] - sc['dsc']['mean']):.3f} on average; paired Wilcoxon P = {p:.3g}, paired t "
        f"P = {tests['dsc']['t_test_p']:.3g} over {n} cases: "
        + ("significant at 0.05, as in the study." if p < 0.05 else
           "**not significant** at 0.05, unlike the study (P < 0.05 with 20 patients).")
    )
    hd_better = ft["hd95_mm"]["mean"] < sc["hd95_mm"]["mean"]
    out.append(
        f"- **Surface distances.** HD95 is {'lower' if hd_better else 'higher'} and ASD "
        f"{'lower' if ft['asd_mm']['mean'] < sc['asd_mm']['mean'] else 'higher'} after fine-tuning"
        + ("" if hd_better else "; the study found both lower") + "."
    )
    cf, cs = arms["finetune"]["convergence_epoch"], arms["scratch"]["convergence_epoch"]
    out.append(
        f"- **Convergence.** By this report's definition the fine-tuned run converged at epoch {cf} and the "
        f"from-scratch run at epoch {cs}"
        + (": pretraining did not speed convergence here, unlike the study (within 20 vs 50+ epochs)."
           if cf is not None and cs is not None and cf >= cs else "; the study reports within 20 vs 50+ epochs.")
    )
    loss = result.get("train_loss_curves")
    if loss:
        target = float(np.mean(loss["scratch"][-3:]))
        reach = {arm: next((i + 1 for i, v in enumerate(smoothed(c)) if v <= target), None) for arm, c in loss.items()}
        out.append(
            f"- **Training loss.** The from-scratch run ends at a training loss of {target:.3f} (mean of its last 3 "
            f"epochs); the fine-tuned run's 3-epoch mean reaches it at epoch {reach['finetune']}, the from-scratch "
            f"run's at epoch {reach['scratch']}: the pretrained weights fit the training cases faster, which is the "
            "part of the study's convergence claim this run reproduces."
        )
    return out


def _fmt(s: dict, digits: int) -> str:
    return "n/a" if s["n"] == 0 else f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def write_report(result: dict, out_root: Path, *, pretrain: dict | None, command: str) -> None:
    """``report.md`` and ``report.json`` (the figures), ``learning_curve.png`` drawn by :func:`plot_curves`."""
    arms, tests = result["arms"], result["tests"]
    lines = [
        "# Transfer learning from hippocampus to glioblastoma GTV: the experiment",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Validation cases (n = {len(result['validation_cases'])}, fixed in `training/splits/brats2018.json`): "
        + ", ".join(result["validation_cases"]),
        "",
        "Metrics on each case's own 1 mm grid, through the app's code path (resample to the model grid, infer,",
        "resample back, post-process); mean ± SD over cases. P values: paired, fine-tuned vs from scratch.",
        "",
        "| | DSC | HD95 (mm) | ASD (mm) | convergence epoch | epoch reaching scratch level | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, title in (("finetune", "Fine-tuned (hippocampus-pretrained)"), ("scratch", "From scratch")):
        a = arms[arm]
        lines.append(
            f"| {title} | {_fmt(a['summary']['dsc'], 4)} | {_fmt(a['summary']['hd95_mm'], 2)} | "
            f"{_fmt(a['summary']['asd_mm'], 2)} | {a['convergence_epoch']} of {a['epochs']} | "
            f"{a['epoch_reaching_scratch_level']} | {a['best_epoch']} |"
        )
    lines.append(
        "| P, Wilcoxon signed-rank / paired t | "
        + " | ".join(f"{tests[m]['wilcoxon_p']:.3g} / {tests[m]['t_test_p']:.3g}" for m in METRICS)
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
        "| case | DSC fine-tuned | DSC scratch | HD95 fine-tuned | HD95 scratch | ASD fine-tuned | ASD scratch "
        "| GTV cm3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cid in result["validation_cases"]:
        f, c = arms["finetune"]["per_case"][cid], arms["scratch"]["per_case"][cid]
        lines.append(f"| {cid} | {f['dsc']:.4f} | {c['dsc']:.4f} | {f['hd95_mm']:.2f} | {c['hd95_mm']:.2f} | "
                     f"{f['asd_mm']:.2f} | {c['asd_mm']:.2f} | {f['ref_cm3']:.1f} |")
    if pretrain:
        lines += ["", "## Source task", "",
                  f"Hippocampus (labels 17, 53) on synthetic T1-like images from real label maps: best validation "
                  f"Dice {pretrain['best_val_dice']:.4f} at epoch {pretrain['best_epoch']} of "
                  f"{len(pretrain['history'])}, on synthetic images of label maps not trained on."]
    (out_root / "report.md").write_text("\n".join(lines) + "\n")
    (out_root / "report.json").write_text(json.dumps({**result, "pretrain": pretrain, "command": command}, indent=2,
                                                     default=float))


def plot_curves(histories: dict[str, dict], path: Path) -> None:
    """Validation DSC and training loss per epoch for each arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for arm, h in histories.items():
        ep = [e["epoch"] for e in h["history"]]
        ax1.plot(ep, [e["val_dice"] for e in h["history"]], label=arm)
        ax2.plot(ep, [e["train_loss"] for e in h["history"]], label=arm)
        conv = convergence_epoch([e["val_dice"] for e in h["history"]])
        if conv:
            ax1.axvline(conv, ls=":", color=ax1.lines[-1].get_color())
    ax1.set(xlabel="epoch", ylabel="validation DSC (model grid)", title="Validation DSC (dotted: convergence epoch)")
    ax2.set(xlabel="epoch", ylabel="Dice + BCE loss", title="Training loss")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
