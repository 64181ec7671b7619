"""``train(config) -> RunResult``: one training run (pretraining, fine-tuning or from scratch).

* Deterministic for a seed: weights, patch sampling and augmentation derive from ``config.seed``.
* Resumable: ``<out_dir>/last.pt`` holds model, optimiser, schedule, epoch, history and the weight average; a rerun
  continues, also with more epochs (the schedule is the one configured now).
* Weight averaging (``optim.average_epochs``): the final epochs run at a constant learning rate and the mean of
  their end-of-epoch weights is kept in ``<out_dir>/average.pt``, validated every epoch beside the current weights.
* Multi-process data parallel under ``torchrun`` (gloo on CPU, nccl on GPU): each rank draws its share of the
  epoch's samples; rank 0 validates, logs and saves.
* Transfer learning: ``config.init`` names a checkpoint whose weights initialise every layer of the same shape;
  the first convolution is mapped onto a different number of input channels by :func:`adapt_input_channels`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from monai.inferers import sliding_window_inference
from monai.losses import DeepSupervisionLoss, DiceCELoss
from monai.networks.nets import SegResNet
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from training.augment import sample_seed, training_transforms
from training.config import ModelConfig, OptimConfig, TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced. ``history`` has one dict per epoch (train_loss, val_dice, val_dice_cases, the epoch's lr,
    seconds; with weight averaging also averaged_epochs and the average's val_dice_average)."""

    out_dir: Path
    best_epoch: int
    best_val_dice: float
    history: list[dict] = field(default_factory=list)

    @property
    def best_checkpoint(self) -> Path:
        return self.out_dir / "best.pt"


def build_network(cfg: ModelConfig, *, in_channels: int, out_channels: int) -> SegResNet:
    """The SegResNet used for every task (source and target share it)."""
    return SegResNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        init_filters=cfg.init_filters,
        blocks_down=tuple(cfg.blocks_down),
        blocks_up=tuple(cfg.blocks_up),
        dropout_prob=cfg.dropout or None,
    )


class DeepSupervision(torch.nn.Module):
    """SegResNet with training-only side heads (deep supervision, as in nnU-Net and MONAI's SegResNetDS).

    Each of the ``levels`` decoder stages below full resolution gets its own head (group norm, ReLU, 1x1x1
    convolution, the same form as SegResNet's final layer), so the coarser stages are asked for the segmentation
    too. In training mode ``forward`` returns ``[full, half, quarter, ...]`` for ``monai.losses.DeepSupervisionLoss``;
    in eval mode only the network's own output. ``net`` is unchanged and is what validation and export use.
    """

    def __init__(self, net: SegResNet, levels: int, out_channels: int) -> None:
        super().__init__()
        stages = len(net.up_layers)
        if not 0 < levels < stages:
            raise ValueError(f"model.deep_supervision: {levels} decoder stage(s) asked for; this network has "
                             f"{stages - 1} below full resolution")
        self.net = net
        self.stages = list(range(stages - 2, stages - 2 - levels, -1))  # half resolution first
        self.heads = torch.nn.ModuleList()
        self._features: dict[int, torch.Tensor] = {}
        for i in self.stages:
            channels = net.init_filters * 2 ** (stages - 1 - i)
            self.heads.append(torch.nn.Sequential(torch.nn.GroupNorm(8, channels), torch.nn.ReLU(),
                                                  torch.nn.Conv3d(channels, out_channels, kernel_size=1)))
            net.up_layers[i].register_forward_hook(self._keep(i))

    def _keep(self, stage: int):
        def hook(module, _inputs, output):
            if module.training:  # validation runs the bare network in eval mode: nothing to keep
                self._features[stage] = output
        return hook

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        main = self.net(x)
        if not self.training:
            return main
        side = [head(self._features.pop(i)) for i, head in zip(self.stages, self.heads)]
        return [main, *side]


FIRST_CONV = "convInit.conv.weight"


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Map a pretrained first-convolution kernel ``(F, C_src, k, k, k)`` onto ``in_channels`` inputs.

    Each new input channel gets the mean of the source kernels over their input channels, scaled by
    ``C_src / in_channels``. A network fed the same image on every new channel then computes exactly what the
    pretrained network computed on that image on every old channel, so the pretrained features start intact and
    fine-tuning learns how the channels (T1c, FLAIR) differ.
    """
    c_src = weight.shape[1]
    if c_src == in_channels:
        return weight.clone()
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1, 1) * (c_src / in_channels)


FINAL_CONV = "conv_final.2.conv."


def adapt_output_channels(value: torch.Tensor, out_channels: int) -> torch.Tensor:
    """A pretrained final-convolution weight or bias with fewer outputs than ``out_channels``: its outputs repeated
    in order, so every output (the target's first, then auxiliary targets) starts from the source task's head."""
    reps = -(-out_channels // value.shape[0])
    return value.repeat(reps, *([1] * (value.dim() - 1)))[:out_channels].clone()


def load_pretrained(net: torch.nn.Module, checkpoint: str | Path) -> dict:
    """Initialise ``net`` from a checkpoint's model weights; returns counts of loaded/adapted/skipped tensors."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    own = net.state_dict()
    loaded, adapted, skipped = 0, 0, []
    for key, value in state.items():
        if key not in own:
            skipped.append(key)
            continue
        if key == FIRST_CONV and value.shape[1] != own[key].shape[1]:
            value = adapt_input_channels(value, own[key].shape[1])
            adapted += 1
        elif (key.startswith(FINAL_CONV) and value.shape[1:] == own[key].shape[1:]
              and value.shape[0] < own[key].shape[0]):
            value = adapt_output_channels(value, own[key].shape[0])
            adapted += 1
        if value.shape != own[key].shape:
            skipped.append(key)
            continue
        own[key] = value
        loaded += 1
    net.load_state_dict(own)
    logger.info("initialised from %s: %d tensors loaded (%d channel-adapted), %d skipped %s", checkpoint, loaded,
                adapted, len(skipped), skipped[:4])
    return {"loaded": loaded, "adapted": adapted, "skipped": skipped}


class TransformedDataset(Dataset):
    """Applies the random patch transforms to samples of ``base``, seeded per (seed, epoch, index, rank)."""

    def __init__(self, base, transforms, *, seed: int, rank: int = 0) -> None:
        self.base, self.transforms, self.seed, self.rank = base, transforms, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        sample = self.base[index]
        self.transforms.set_random_state(seed=sample_seed(self.seed, self.epoch, index, self.rank))
        out = self.transforms(sample)
        out = out[0] if isinstance(out, list) else out
        return {k: torch.as_tensor(out[k]).as_subclass(torch.Tensor).float() for k in ("image", "label", "aux")
                if k in out}


def segmentation_loss(cfg: OptimConfig) -> DeepSupervisionLoss:
    """Dice + cross-entropy on sigmoid outputs, per patch or over the batch (``cfg.batch_dice``); deep-supervision
    outputs, when the network returns a list, weighted 1, 1/2, 1/4, ..."""
    dice_ce = DiceCELoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5, batch=cfg.batch_dice)
    return DeepSupervisionLoss(dice_ce, weight_mode="exp")


def training_patches(config: TrainConfig, rank: int = 0, world: int = 1) -> tuple[TransformedDataset, list]:
    """The randomly drawn, augmented training patches of ``config`` (seeded per epoch: ``set_epoch``) and the
    validation cases."""
    pre = config.preprocessing
    base, val_cases = _datasets(config, rank, world)
    transforms = training_transforms(config.augment, patch_size=pre.patch_size, spacing_mm=float(pre.spacing_mm[0]))
    return TransformedDataset(base, transforms, seed=config.seed, rank=rank), val_cases


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn, x: torch.Tensor, y: torch.Tensor, *,
               amp: bool) -> float:
    """One optimisation step on a batch, forward and loss under bfloat16 autocast when ``amp``; the batch's loss."""
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = loss_fn(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _lr_factor(epoch: int, cfg) -> float:
    """Linear warm-up, a cosine from 1 to 0.05 over the epochs before the averaging ones, then constant."""
    cosine_epochs = cfg.epochs - cfg.average_epochs
    if cfg.average_epochs and epoch >= cosine_epochs:
        return cfg.average_lr_factor
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    t = (epoch - cfg.warmup_epochs) / max(cosine_epochs - cfg.warmup_epochs, 1)
    return 0.5 * (1 + math.cos(math.pi * t)) * 0.95 + 0.05


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two bool arrays; 1.0 when both are empty."""
    s = pred.sum() + ref.sum()
    return 1.0 if s == 0 else float(2.0 * np.logical_and(pred, ref).sum() / s)


@torch.no_grad()
def validate(net: torch.nn.Module, cases: list[dict], *, patch_size, overlap: float, device) -> list[float]:
    """Dice per validation case on the model grid. Cases: ``image (C,Z,Y,X)``, ``label (Z,Y,X)`` arrays."""
    net.eval()
    scores = []
    for case in cases:
        x = torch.from_numpy(case["image"])[None].to(device)
        logits = sliding_window_inference(x, roi_size=patch_size, sw_batch_size=2, predictor=net, overlap=overlap,
                                          mode="gaussian")
        pred = (logits[0, 0] > 0).cpu().numpy()
        scores.append(dice(pred, case["label"] > 0))
    net.train()
    return scores


def _datasets(config: TrainConfig, rank: int, world: int):
    """(training base dataset, validation cases) for the task."""
    if config.task == "gtv":
        from training.gtv_data import gtv_datasets

        return gtv_datasets(config, rank=rank, world=world)
    if config.task == "hippocampus_msd":
        from training.msd_data import msd_datasets

        return msd_datasets(config, rank=rank, world=world)
    from training.synth_data import synth_datasets

    return synth_datasets(config, rank=rank, world=world)


def _init_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, world, device


def train(config: TrainConfig, *, resume: bool = True, progress: bool = True) -> RunResult:
    """Train one run; see the module docstring. Returns the run's result (also written to ``history.json``)."""
    rank, world, device = _init_distributed()
    if device.type == "cpu":
        torch.set_num_threads(max(1, config.optim.threads // world))
    out = Path(config.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)

    net = build_network(config.model, in_channels=config.in_channels, out_channels=config.out_channels).to(device)
    init_info = None
    if config.init:
        init_info = load_pretrained(net, config.init)
    trained = net
    if config.model.deep_supervision:
        trained = DeepSupervision(net, config.model.deep_supervision, config.out_channels).to(device)
    opt = torch.optim.AdamW(trained.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: _lr_factor(e, config.optim))
    history: list[dict] = []
    start_epoch = 0
    best = (-1, -1.0)
    # stochastic weight averaging (Izmailov et al. 2018): SegResNet normalises with group norm, so the mean of the
    # weights needs no statistics pass
    first_average = config.optim.epochs - config.optim.average_epochs
    average = AveragedModel(net) if config.optim.average_epochs else None
    last = out / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, map_location=device, weights_only=False)
        net.load_state_dict(ck["model"])
        if trained is not net:
            trained.heads.load_state_dict(ck["side_heads"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start_epoch, best = ck["history"], ck["epoch"] + 1, tuple(ck["best"])
        if average is not None and ck.get("average"):
            average.load_state_dict(ck["average"])
        for group, base_lr in zip(opt.param_groups, sched.base_lrs):  # the schedule as configured now (a run
            group["lr"] = base_lr * _lr_factor(start_epoch, config.optim)  # continued with more epochs, say)
        logger.info("resuming %s at epoch %d", out, start_epoch + 1)
    model = trained
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(trained, device_ids=ids)

    pre = config.preprocessing
    data, val_cases = training_patches(config, rank, world)
    loss_fn = segmentation_loss(config.optim)
    use_amp = device.type == "cuda" or config.optim.cpu_bf16
    where = (f"{torch.cuda.get_device_name(device)} GPU" if device.type == "cuda"
             else f"CPU ({torch.get_num_threads()} threads)")
    where += (f" x {world} processes" if world > 1 else "") + (", bfloat16 autocast" if use_amp else "")

    for epoch in range(start_epoch, config.optim.epochs):
        t0 = time.time()
        lr = opt.param_groups[0]["lr"]  # this epoch's learning rate, recorded with it
        data.set_epoch(epoch)
        loader = DataLoader(data, batch_size=config.optim.batch_size, shuffle=False,
                            num_workers=config.optim.num_workers, drop_last=True)
        losses = []
        # In a terminal a live bar; in a log file (CI, nohup) no carriage-return spam: the per-epoch INFO line is
        # the progress record there.
        bar = tqdm(loader, desc=f"{config.name} epoch {epoch + 1}/{config.optim.epochs}", leave=False,
                   disable=not progress or rank != 0 or not sys.stderr.isatty())
        for batch in bar:
            x, y = batch["image"].to(device), batch["label"].to(device)
            if "aux" in batch:  # region-based training: the auxiliary targets follow the target's channel(s)
                y = torch.cat([y, batch["aux"].to(device)], dim=1)
            losses.append(train_step(model, opt, loss_fn, x, y, amp=use_amp))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        sched.step()
        averaging = average is not None and epoch >= first_average
        if averaging:
            average.update_parameters(net)
        if rank == 0:
            scores = validate(net, val_cases, patch_size=pre.patch_size, overlap=pre.overlap, device=device)
            entry = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "val_dice": float(np.mean(scores)),
                "val_dice_cases": [round(s, 4) for s in scores],
                "lr": lr,
                "seconds": round(time.time() - t0, 1),
                "device": where,
            }
            if averaging:
                avg_scores = validate(average.module, val_cases, patch_size=pre.patch_size, overlap=pre.overlap,
                                      device=device)
                entry.update({"averaged_epochs": [first_average + 1, epoch + 1],
                              "val_dice_average": float(np.mean(avg_scores)),
                              "val_dice_average_cases": [round(s, 4) for s in avg_scores]})
                torch.save({"model": average.module.state_dict(), "epoch": epoch,
                            "averaged_epochs": entry["averaged_epochs"], "config": config.to_dict()},
                           out / "average.tmp")
                os.replace(out / "average.tmp", out / "average.pt")
            history.append(entry)
            if entry["val_dice"] > best[1]:
                best = (epoch + 1, entry["val_dice"])
                torch.save({"model": net.state_dict(), "epoch": epoch, "config": config.to_dict()}, out / "best.pt")
            torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "epoch": epoch, "history": history, "best": list(best), "config": config.to_dict(),
                        "side_heads": trained.heads.state_dict() if trained is not net else None,
                        "average": average.state_dict() if average is not None else None}, out / "last.tmp")
            os.replace(out / "last.tmp", last)
            logger.info("%s epoch %d/%d: loss %.4f, validation Dice %.4f (best %.4f at %d)%s, %.0f s", config.name,
                        epoch + 1, config.optim.epochs, entry["train_loss"], entry["val_dice"], best[1], best[0],
                        f", weights averaged over epochs {first_average + 1}-{epoch + 1}: "
                        f"{entry['val_dice_average']:.4f}" if averaging else "", entry["seconds"])
        if world > 1:
            torch.distributed.barrier()
    result = RunResult(out_dir=out, best_epoch=int(best[0]), best_val_dice=float(best[1]), history=history)
    if rank == 0:
        (out / "history.json").write_text(json.dumps(
            {"name": config.name, "task": config.task, "init": config.init, "init_info": init_info,
             "best_epoch": result.best_epoch, "best_val_dice": result.best_val_dice, "world_size": world,
             "history": history}, indent=1))
    if world > 1:
        torch.distributed.barrier()
    return result
