#!/usr/bin/env python3
"""PyTorch eager training-step throughput: the baseline for `critlab bench`.

Times full SGD training steps (forward, cross-entropy, backward, SGD with
momentum 0.9 and weight decay 5e-4) of critlab's zoo models or torchvision's
at one batch size, in float32, and reports images per second:

    python3 tools/torch_bench.py --device cuda --models allcnn,resnet18 \
        --batch 128 --json /tmp/torch_cuda.json
    python3 tools/torch_bench.py --device cpu --batch 8 --warmup 1 --steps 2  # smoke test
    python3 tools/torch_bench.py --device cpu --models tv:mobilenet_v2 --batch 32 --threads 2

`critlab bench --torch PYTHON` runs it, one model per process, beside its
own measurement of the same model, batch and threads (docs/performance.md).

Models (from tools/torch_models.py, shared with export_torch.py; it needs
only torch and torchvision):

  allcnn    All-CNN-C with BatchNorm: nine convolutions with
            96,96,192,192,192,192,192,192,10 channels, strides
            1,1,2,1,1,2,1,1,1, 3x3 kernels (pad 1) for the first seven and
            1x1 for the last two, each followed by BatchNorm and ReLU, global
            average pool, flatten. Conv biases, as critlab's zoo allcnn
            (export_torch.py's allcnn has none: BatchNorm follows).
  resnet18  CIFAR ResNet-18: 3x3 stride-1 stem with 64 channels, no max
            pool, BasicBlocks 2-2-2-2 (64,128,256,512), global average pool,
            fc to 10 classes (torchvision's ResNet and BasicBlock).
  small     five conv-BatchNorm-ReLU (32, 32/2, 64, 64/2, 128), global
            average pool, fc.
  tv:NAME   torchvision.models.NAME(num_classes=--classes), untrained, at
            --image-size (torch_models.torchvision_model).

Measurement: the model is in train mode (BatchNorm uses batch statistics).
One step is zero_grad, forward, loss, backward, optimizer step. After
--warmup steps (cuDNN picks its algorithms there when --cudnn-benchmark is
on, which is the default, matching ONNX Runtime's EXHAUSTIVE search) the
script synchronises, times --steps steps (at least --min-time seconds) and
synchronises again. By default each step copies its batch from host memory
to the device, as a training loop over a host-side data pipeline does, and
as critlab does; --data device keeps the batch on the device (pure
compute). Float32 throughout; TF32 is off unless --tf32.

Output: one table line per model on stdout, and with --json a file

    {"tool": "torch_bench", "torch": "...", "device": "...", "device_name": "...",
     "tf32": false, "cudnn_benchmark": true, "data": "host", "batch": 128,
     "results": [{"model": "allcnn", "batch": 128, "images_per_sec": ...,
                  "step_ms": ..., "steps": ..., "seconds": ..., "cpu_seconds": ...,
                  "params": ...,
                  "loss_first": ..., "loss_last": ...,
                  "peak_rss_bytes": ...}, ...]}

peak_rss_bytes is the process's peak resident set size so far (getrusage),
PyTorch's own import included: run one model per process to read it as
that model's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import torch
import torch.nn as nn

from torch_models import TORCHVISION_PREFIX, AllCNN, build_model

MODELS = ("allcnn", "resnet18", "small")


# ---------------------------------------------------------------- models


def build(name: str, classes: int, image_size: int, width: float = 1.0) -> nn.Module:
    """The model critlab's zoo builds under name (critlab bench compares
    them): its allcnn keeps the convolutions' biases."""
    if name == "allcnn":
        return AllCNN(classes, width, conv_bias=True)
    return build_model(name, classes, width, image_size)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def set_precision(tf32: bool) -> None:
    """Float32 matmuls and convolutions, or TF32 when asked.

    PyTorch >= 2.9 has per-backend fp32_precision settings and refuses a mix
    of them with the older allow_tf32 flags, so use the newer when present.
    Either way cuDNN convolutions must be set explicitly: their default is
    TF32 on.
    """
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        mode = "tf32" if tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(name: str, args: argparse.Namespace, device: torch.device, model: nn.Module | None = None) -> dict:
    """Time training steps of the built-in model name, or of model when given
    (tools/acceptance_models.py times torchvision's that way)."""
    torch.manual_seed(args.seed)
    if model is None:
        model = build(name, args.classes, args.image_size, getattr(args, "width", 1.0))
    model = model.to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = model.parameters()
    if getattr(args, "no_decay_bias_norm", False):
        # critlab's compiler default (NoDecayOnBiasAndNorm): no decay on
        # 1-D parameters, the biases and BatchNorm weights.
        ps = list(model.parameters())
        params = [{"params": [p for p in ps if p.ndim > 1]},
                  {"params": [p for p in ps if p.ndim <= 1], "weight_decay": 0.0}]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    g = torch.Generator().manual_seed(args.seed)
    host_x = torch.randn(args.batch, 3, args.image_size, args.image_size, generator=g)
    host_y = torch.randint(0, args.classes, (args.batch,), generator=g)
    if device.type == "cuda" and args.data == "host":
        host_x, host_y = host_x.pin_memory(), host_y.pin_memory()
    dev_x, dev_y = host_x.to(device), host_y.to(device)

    def step() -> torch.Tensor:
        if args.data == "host":
            x = host_x.to(device, non_blocking=True)
            y = host_y.to(device, non_blocking=True)
        else:
            x, y = dev_x, dev_y
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    loss_first = float(step())
    for _ in range(max(0, args.warmup - 1)):
        step()
    sync(device)
    steps, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        loss = step()
        steps += 1
        if steps >= args.steps:
            sync(device)
            if time.perf_counter() - t0 >= args.min_time:
                break
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    loss_last = float(loss)
    return {
        "model": name,
        "batch": args.batch,
        "images_per_sec": steps * args.batch / seconds,
        "step_ms": 1000 * seconds / steps,
        "steps": steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "params": n_params(model),
        "loss_first": loss_first,
        "loss_last": loss_last,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="allcnn,resnet18", help="comma-separated: allcnn, resnet18, small, tv:NAME")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (cuda when available)")
    p.add_argument("--warmup", type=int, default=15, help="untimed steps first (default 15)")
    p.add_argument("--steps", type=int, default=50, help="timed steps, at least (default 50)")
    p.add_argument("--min-time", type=float, default=2.0, help="timed seconds, at least (default 2)")
    p.add_argument("--data", choices=("host", "device"), default="host",
                   help="host: copy the batch to the device every step (default); device: keep it there")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions")
    p.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                   help="use cuDNN's heuristic algorithm choice instead of benchmarking")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier of the zoo models")
    p.add_argument("--no-decay-bias-norm", action="store_true",
                   help="no weight decay on biases and BatchNorm weights (critlab's default; critlab bench sets it)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        if name not in MODELS and not name.startswith(TORCHVISION_PREFIX):
            p.error(f"unknown model {name!r} (known: {', '.join(MODELS)}, tv:NAME)")
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--batch and --steps must be >= 1, --warmup >= 0")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("torch_bench: CUDA is not available to this PyTorch", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    set_precision(args.tf32)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    info = {
        "tool": "torch_bench",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "device": str(device),
        "device_name": device_name,
        "tf32": args.tf32,
        "cudnn_benchmark": args.cudnn_benchmark,
        "channels_last": args.channels_last,
        "data": args.data,
        "batch": args.batch,
        "image_size": args.image_size,
        "threads": torch.get_num_threads(),
        "results": [],
    }
    print(f"# torch {torch.__version__} on {device_name}; float32, tf32={args.tf32}, "
          f"cudnn.benchmark={args.cudnn_benchmark}, data={args.data}")
    print(f"{'model':<16} {'batch':>5} {'device':<8} {'images/s':>10} {'step ms':>9} {'steps':>6} {'loss':>15}")
    for name in names:
        r = bench_model(name, args, device)
        info["results"].append(r)
        print(f"{r['model']:<16} {r['batch']:>5} {str(device):<8} {r['images_per_sec']:>10.1f} "
              f"{r['step_ms']:>9.2f} {r['steps']:>6} {r['loss_first']:>7.3f}->{r['loss_last']:<7.3f}",
              flush=True)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
