"""``python -m training``: a thin command line over :mod:`training.train`, ``export``, ``evaluate`` and
``experiment``.

    python -m training pretrain   --config training/configs/pretrain_hippocampus.yaml
    python -m training finetune   --config training/configs/gtv.yaml --init work/runs/pretrain/best.pt
    python -m training scratch    --config training/configs/gtv.yaml
    python -m training experiment --pretrain-config ... --config ... --out work/experiment
    python -m training export     --run work/experiment/finetune --out models/glioblastoma_gtv --name ... --version ...
    python -m training evaluate   --model MODEL_DIR --data BRATS_DIR --out OUT_DIR
    python -m training evaluate-dicom --models models --data DICOM_STUDIES --out OUT_DIR
    python -m training evaluate-brats-dicom --models models --data BRATS_DIR --cases ... --out OUT_DIR
    python -m training quality-table --input NAME METRICS_JSON ... --model MODEL_DIR --out docs/quality.md

Multi-process data parallel: ``torchrun --nproc_per_node 2 -m training finetune ...`` (gloo on CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from operators.core.errors import GtvError

logger = logging.getLogger("training")


MIRROR_HELP = ("test-time mirroring of the GTV model: mirror axes of the model grid, any of x (left-right), y, z, "
               "e.g. xyz (8 network calls per window); default none, as the app runs")

def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML configuration")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.epochs=5 (repeatable)")
    p.add_argument("--out", help="run folder (default: the config's out_dir)")
    p.add_argument("--no-resume", action="store_true", help="start again even if the run folder holds last.pt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("pretrain", "train the source task (hippocampus on synthetic MR)"),
                        ("finetune", "train the target task from pretrained weights (--init)"),
                        ("scratch", "train the target task from random weights"),
                        ("train", "train any task as the config says")):
        sp = sub.add_parser(name, help=help_)
        _common(sp)
        if name == "finetune":
            sp.add_argument("--init", required=True, help="pretrained checkpoint (best.pt of a pretrain run)")
    ex = sub.add_parser("experiment", help="pretrain, fine-tune, from scratch, evaluate, report")
    _common(ex)
    ex.add_argument("--pretrain-config", required=True)
    ex.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE")
    ex.add_argument("--export", help="also export the fine-tuned model as the app's bundle into this folder")
    ex.add_argument("--name", default="glioblastoma_gtv_segresnet")
    ex.add_argument("--version", default="0.1.0")
    e = sub.add_parser("export", help="export a run as a MONAI bundle for the app")
    e.add_argument("--run", required=True, nargs="+",
                   help="run folder; several: their ensemble (mean of the logits) as one network")
    e.add_argument("--out", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--version", required=True)
    e.add_argument("--checkpoint", choices=("best", "last", "average"), default="best",
                   help="best: the epoch with the best validation Dice (default); last: the final epoch; average: "
                        "the weights averaged over the final epochs (optim.average_epochs)")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the run's postprocessing.* or quality.* for this bundle (repeatable), e.g. "
                        "postprocessing.keep_core_mm3=0")
    rv = sub.add_parser("record-validation", help="write an evaluate run's summary into a bundle's metadata (the "
                                                  "validation accuracy the app reports)")
    rv.add_argument("--model", required=True)
    rv.add_argument("--metrics", required=True, help="metrics.json of python -m training evaluate")
    v = sub.add_parser("evaluate", help="segment every case of a BraTS-layout folder; metrics where _seg exists")
    v.add_argument("--model", required=True)
    v.add_argument("--data", required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--cases", nargs="*", help="only these case IDs")
    v.add_argument("--device", default="auto")
    v.add_argument("--brain", choices=("app", "image"), default="app",
                   help="app: brain extraction as the app runs it (default); image: the image's own non-zero region "
                        "(skull-stripped data; a diagnostic of the GTV model alone)")
    v.add_argument("--mirror", default="", metavar="AXES", help=MIRROR_HELP)
    d = sub.add_parser("evaluate-dicom", help="the app's GTV on DICOM studies against their MaskTumor series")
    d.add_argument("--models", required=True, help="folder of bundles (GTV and brain extraction)")
    d.add_argument("--data", required=True, help="e.g. ../shared/data/tcia-brain-tumor-progression")
    d.add_argument("--out", required=True)
    d.add_argument("--device", default="auto")
    d.add_argument("--exclude-series", metavar="REGEX",
                   help="leave out the series whose SeriesDescription matches (e.g. FLAIR: the study without it)")
    d.add_argument("--mirror", default="", metavar="AXES", help=MIRROR_HELP)
    b = sub.add_parser("evaluate-brats-dicom", help="BraTS cases written as DICOM studies (1 mm, 5 mm slices at 6 mm, "
                                                    "oblique feet-first), through the app's path")
    b.add_argument("--models", required=True, help="folder of bundles (GTV and brain extraction)")
    b.add_argument("--data", required=True, help="BraTS-layout folder, e.g. ../shared/data/brats2018")
    b.add_argument("--cases", nargs="+", required=True)
    b.add_argument("--variants", nargs="+", default=["1mm", "thick", "oblique"])
    b.add_argument("--out", required=True)
    bc = sub.add_parser("brain-check", help="the app's Brain mask against HD-BET's (an independent brain extractor) "
                                            "on DICOM studies, slice by slice at the vertex")
    bc.add_argument("--models", required=True, help="folder of bundles (GTV and brain extraction)")
    bc.add_argument("--data", required=True, help="e.g. ../shared/data/tcia-brain-tumor-progression")
    bc.add_argument("--out", required=True)
    bc.add_argument("--mode", choices=("fast", "accurate"), default="accurate",
                    help="HD-BET: one network (fast) or its five-fold ensemble (accurate, default)")
    bc.add_argument("--mirror", action="store_true",
                    help="HD-BET with its test-time mirroring (its authors' default; about 8x the time)")
    r = sub.add_parser("study-report", help="the study's report from finished arms: their runs and app-path "
                                            "evaluations, paired tests against scratch, learning curves")
    r.add_argument("--arm", nargs=3, action="append", required=True, metavar=("NAME", "RUN_DIR", "EVAL_DIR"),
                   help="an arm (one must be 'scratch'), its run folder (history.json) and its evaluate output "
                        "folder (metrics.json); repeatable")
    r.add_argument("--pretrain", nargs=2, action="append", default=[], metavar=("ARM", "RUN_DIR"),
                   help="the source-task run of a pretrained arm; repeatable")
    r.add_argument("--config", required=True, help="the target task's config (the budget every arm shared)")
    r.add_argument("--out", required=True)
    pi = sub.add_parser("evaluate-poor-inputs", help="inputs the app should not trust, made from a real study "
                                                     "(pre-contrast T1 as T1c, FLAIR 10 mm off, half the brain)")
    pi.add_argument("--models", required=True)
    pi.add_argument("--study", required=True,
                    help="e.g. ../shared/data/tcia-brain-tumor-progression/PGBM-001/1992-04-02")
    pi.add_argument("--out", required=True)
    q = sub.add_parser("quality-table", help="every quality signal on every evaluated case, with its Dice and "
                                             "verdict, and what each limit would flag (Markdown)")
    q.add_argument("--input", nargs=2, action="append", required=True, metavar=("NAME", "METRICS_JSON"),
                   help="a set's name and the metrics.json of evaluate, evaluate-dicom or evaluate-brats-dicom "
                        "(repeatable)")
    q.add_argument("--model", required=True, help="the GTV bundle whose quality limits apply")
    q.add_argument("--out", required=True, help="Markdown file, e.g. docs/quality.md")
    p.add_argument("-l", "--log-level", default="INFO", type=str.upper)
    return p


def _load(args, overrides=None, path=None, **fields):
    from training.config import load_config

    fields.setdefault("out_dir", getattr(args, "out", None))
    return load_config(path or args.config, overrides if overrides is not None else args.set, **fields)


def _experiment(args) -> int:
    from training.evaluate import evaluate
    from training.experiment import arm_config, compare, plot_curves, write_report
    from training.export import export_bundle
    from training.train import train

    out_root = Path(args.out or "work/experiment")
    out_root.mkdir(parents=True, exist_ok=True)
    resume = not args.no_resume
    pre_cfg = _load(args, args.pretrain_set, args.pretrain_config, out_dir=str(out_root / "pretrain"))
    target = _load(args, args.set, args.config, out_dir=str(out_root / "target"))
    pre = train(pre_cfg, resume=resume)
    histories, evaluations = {}, {}
    split = json.loads(Path(target.data.split_file).read_text())
    for arm, init in (("finetune", str(pre.best_checkpoint)), ("scratch", None)):
        cfg = arm_config(target, arm, out_root, init)
        train(cfg, resume=resume)
        histories[arm] = json.loads((Path(cfg.out_dir) / "history.json").read_text())
        bundle = export_bundle(cfg.out_dir, out_root / "bundles" / arm, name=f"{args.name}_{arm}",
                               version=args.version)
        evaluations[arm] = evaluate(bundle, target.data.root, out_root / "evaluation" / arm,
                                    case_ids=split["validation"])
    from training.experiment import describe_budget

    result = compare(histories, evaluations,
                     describe_budget(target, histories, training_cases=len(split["train"])))
    plot_curves(histories, out_root / "learning_curve.png")
    pre_hist = json.loads((Path(pre_cfg.out_dir) / "history.json").read_text())
    command = "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_report(result, out_root, pretrain=pre_hist, command=command)
    logger.info("report: %s", out_root / "report.md")
    if args.export:
        ft = result["arms"]["finetune"]
        facts = {
            "training_case_ids": split["train"],
            "validation_case_ids": split["validation"],
            "validation_metrics_1mm": {m: ft["summary"][m] for m in ("dsc", "hd95_mm", "asd_mm")},
            "convergence_epoch": ft["convergence_epoch"],
            "pretrained_on": "hippocampus (labels 17, 53), synthetic T1-like MR from SynthSeg label maps 01-16",
            "command": command,
        }
        export_bundle(out_root / "finetune", args.export, name=args.name, version=args.version, training=facts,
                      docs={"report.md": out_root / "report.md", "learning_curve.png": out_root / "learning_curve.png",
                            "report.json": out_root / "report.json"},
                      description="Glioblastoma GTV (BraTS tumour core: necrosis + enhancing tumour) on T1 "
                                  "post-contrast + FLAIR; SegResNet pretrained on hippocampus segmentation of "
                                  "synthetic MR and fine-tuned on BraTS 2018")
        logger.info("exported the fine-tuned model to %s", args.export)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=args.log_level if rank == 0 else "WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        if args.command in ("pretrain", "finetune", "scratch", "train"):
            from training.train import train

            fields = {"init": args.init} if args.command == "finetune" else {}
            cfg = _load(args, **fields)
            if args.command == "scratch":
                cfg = dataclasses.replace(cfg, init=None)
            result = train(cfg, resume=not args.no_resume)
            logger.info("best validation Dice %.4f at epoch %d; checkpoint %s", result.best_val_dice,
                        result.best_epoch, result.best_checkpoint)
        elif args.command == "experiment":
            return _experiment(args)
        elif args.command == "export":
            from training.export import export_bundle

            export_bundle(args.run if len(args.run) > 1 else args.run[0], args.out, name=args.name,
                          version=args.version, checkpoint=f"{args.checkpoint}.pt", overrides=args.overrides)
        elif args.command == "record-validation":
            from training.export import record_validation

            record_validation(Path(args.model), Path(args.metrics))
        elif args.command == "evaluate-dicom":
            from training.dicom_eval import evaluate_dicom

            s = evaluate_dicom(args.models, args.data, args.out, device=args.device,
                               exclude=args.exclude_series, mirror=args.mirror)["summary"]
            logger.info("mean Dice vs MaskTumor %.4f; MaskTumor inside the brain mask %.4f; predicted outside the "
                        "brain %.2f cm3", s["dsc"]["mean"], s["reference_in_brain_fraction"]["mean"],
                        s["outside_brain_predicted_cm3"]["mean"])
        elif args.command == "evaluate-brats-dicom":
            from training.dicom_eval import evaluate_brats_dicom

            s = evaluate_brats_dicom(args.models, args.data, args.out, case_ids=args.cases,
                                     variants=args.variants)["summary"]
            for variant, v in s.items():
                logger.info("%s: brain Dice vs non-zero brain %.4f (min %.4f), GTV DSC %.4f, HD95 %.2f mm", variant,
                            v["brain_dsc_vs_nonzero"]["mean"], v["brain_dsc_vs_nonzero"]["min"], v["dsc"]["mean"],
                            v["hd95_mm"]["mean"])
        elif args.command == "brain-check":
            from training.brain_check import check_brain

            check_brain(args.models, args.data, args.out, mode=args.mode, mirror=args.mirror)
        elif args.command == "study-report":
            from training.experiment import compare, describe_budget, plot_curves, write_report

            target = _load(args, [], args.config)
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            histories = {n: json.loads((Path(r) / "history.json").read_text()) for n, r, _ in args.arm}
            evaluations = {n: json.loads((Path(e) / "metrics.json").read_text()) for n, _, e in args.arm}
            split = json.loads(Path(target.data.split_file).read_text())
            result = compare(histories, evaluations, describe_budget(target, histories,
                                                                     training_cases=len(split["train"])))
            plot_curves(histories, out / "learning_curve.png")
            pretrain = {n: json.loads((Path(r) / "history.json").read_text()) for n, r in args.pretrain}
            write_report(result, out, pretrain=pretrain, split=target.data.split_file,
                         command="python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
            logger.info("report: %s", out / "report.md")
        elif args.command == "evaluate-poor-inputs":
            from training.poor_inputs import evaluate_poor_inputs

            evaluate_poor_inputs(args.models, args.study, args.out)
        elif args.command == "quality-table":
            from operators.core.model.spec import find_model
            from training.quality_table import write_table

            rows = write_table([(name, Path(path)) for name, path in args.input], Path(args.out),
                               limits=find_model(args.model).quality,
                               command="python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
            logger.info("%d cases in %s", len(rows), args.out)
        elif args.command == "evaluate":
            from training.evaluate import evaluate

            result = evaluate(args.model, args.data, args.out, case_ids=args.cases, device=args.device,
                              brain=args.brain, mirror=args.mirror)
            if result["summary"]:
                s = result["summary"]
                logger.info("mean DSC %.4f, HD95 %.2f mm, ASD %.2f mm over %d cases", s["dsc"]["mean"],
                            s["hd95_mm"]["mean"], s["asd_mm"]["mean"], s["dsc"]["n"])
        return 0
    except GtvError as e:
        logger.error("%s: %s", type(e).__name__, e)
        return e.exit_code
