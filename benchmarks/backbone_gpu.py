"""The frozen-backbone path on a GPU: ``retain.backbone.features`` in float32, under bf16
autocast, and with ``torch.compile`` (default and max-autotune), on a ResNet-style CNN over
32x32 images. Prints samples/s side by side (median of --repeats, contenders alternating) and
the largest difference of each contender's features from float32's. Runs on a CPU too (to
check it works; the figures then say little).

    python benchmarks/backbone_gpu.py --samples 20000 --batch-size 512 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import compare, fmt_ratio, machine, markdown_table
from torch import nn
from torch.utils.data import TensorDataset

from retain.backbone import features, freeze


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))


def backbone(width: int) -> nn.Sequential:
    return nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    net = freeze(backbone(args.width)).to(device)
    data = TensorDataset(torch.randn(args.samples, 3, 32, 32),
                         torch.zeros(args.samples, dtype=torch.long))
    nets = {"float32": (net, None), "bf16 autocast": (net, torch.bfloat16)}
    if not args.no_compile:
        for mode in ("default", "max-autotune"):
            compiled = torch.compile(net, mode=mode)
            nets[f"compile {mode}"] = (compiled, None)
            nets[f"compile {mode} + bf16"] = (compiled, torch.bfloat16)
    reference = features(net, data, args.batch_size, device).tensors[0]
    outputs: dict[str, torch.Tensor] = {}

    def contender(name):
        model, dtype = nets[name]
        features(model, TensorDataset(*(t[: args.batch_size] for t in data.tensors)),
                 args.batch_size, device, dtype)  # warm-up: compilation, cuDNN choice

        def go():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs[name] = features(model, data, args.batch_size, device, dtype).tensors[0]
            return time.perf_counter() - start
        return go

    timings = compare({name: contender(name) for name in nets}, args.repeats)
    rows = [[name, f"{args.samples / timings.median(name):,.0f}",
             fmt_ratio(timings.ratio(name, "float32")),
             f"{(outputs[name] - reference).abs().max():.2e}"] for name in nets]
    print(machine(), "|", torch.cuda.get_device_name() if device.type == "cuda" else "no GPU")
    print(f"{args.samples} samples 3x32x32, batch {args.batch_size}, width {args.width}")
    print(markdown_table(["backbone path", "samples/s", "time vs float32",
                          "max |feature - float32|"], rows))


if __name__ == "__main__":
    main()
