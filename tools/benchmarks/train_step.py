"""Benchmark: one training step of the GTV network (forward, loss, backward, AdamW) in fp32 and in bfloat16 autocast,
on real BraTS patches drawn as training draws them; seconds per step printed as JSON.

    python -m tools.benchmarks.train_step [--config training/configs/gtv.yaml] [--steps 10] [--set KEY=VALUE ...]

What ``optim.cpu_bf16`` buys on the machine at hand. Speed is measured here, never in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import torch
from torch.utils.data import DataLoader

from training.config import load_config
from training.train import build_network, segmentation_loss, train_step, training_patches


def seconds_per_step(config, batches, *, bf16: bool, warmup: int = 2) -> float:
    torch.manual_seed(config.seed)
    net = build_network(config.model, in_channels=len(config.preprocessing.channels), out_channels=len(config.labels))
    opt = torch.optim.AdamW(net.parameters(), lr=config.optim.lr)
    loss_fn = segmentation_loss(config.optim)
    net.train()
    for i, batch in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        train_step(net, opt, loss_fn, batch["image"], batch["label"], amp=bf16)
    return (time.perf_counter() - start) / (len(batches) - warmup)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="training/configs/gtv.yaml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    samples = config.optim.batch_size * (args.steps + 2)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, samples_per_epoch=samples))
    torch.set_num_threads(config.optim.threads)
    data, _ = training_patches(config)
    data.set_epoch(0)
    batches = list(DataLoader(data, batch_size=config.optim.batch_size, shuffle=False, drop_last=True))
    result = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch": config.optim.batch_size,
        "patch": list(config.preprocessing.patch_size),
        "steps_timed": len(batches) - 2,
        "fp32_s_per_step": round(seconds_per_step(config, batches, bf16=False), 3),
        "bf16_s_per_step": round(seconds_per_step(config, batches, bf16=True), 3),
    }
    result["speedup"] = round(result["fp32_s_per_step"] / result["bf16_s_per_step"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
