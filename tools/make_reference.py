#!/usr/bin/env python3
"""Make the PyTorch reference fixtures in harness/testdata/torch/.

For each model (allcnn, resnet18, simplecnn at reduced width, and two
torchvision classifiers as torchvision builds them: mobilenet_v3_small
and efficientnet_b0 at reduced width, 32 px) this writes

  NAME.onnx               the forward graph, exported by export_torch.py
  NAME.VARIANT.ref.onnx   inputs and PyTorch's results of K SGD steps

A ``.ref.onnx`` file is an ONNX ModelProto with no nodes: its graph
initializers are the tensors, its metadata_props the hyperparameters:

  images_k  float32 [B,3,H,W]  batch of step k (k = 1..steps), seeded normal
  labels_k  int64   [B]        its labels
  loss_k    float32 []         mean cross-entropy of step k (before the update)
  correct_k int64   []         argmax(logits) == label count of step k
  P         float32            every parameter after the last step (state_dict name)
  S         float32            every BatchNorm running_mean / running_var after it
  P.mom     float32            the SGD momentum buffer of P after the last step
                               (absent when momentum is 0: PyTorch keeps none)
  P.exp_avg, P.exp_avg_sq      Adam/AdamW: the moments of P after the last step
  optimizer.step float32 [1]   Adam/AdamW: the step count
  eval_loss float32 []         after the last step, the eval-mode loss (running
  eval_correct int64 []        statistics, no label smoothing) and correct count
                               on images_1

  metadata: format=critlab-torchref-1, forward=NAME.onnx, model, width,
  image_size, batch_size, steps, lr, momentum, nesterov (true/false),
  weight_decay, decay_bias_bn (true: PyTorch's default, decay on every
  parameter), label_smoothing, dropout, seed, torch, and the float32 noise
  floor f32err_{loss,params,mom,stats} (see below; loss includes eval_loss;
  mom covers the Adam moments). Adam variants add optimizer (adam, adamw), eps,
  warmup_epochs W (every step counts as an epoch: torch's LinearLR with
  start_factor 1/(W+1) over W steps), grad_clip (clip_grad_norm_ before each
  step, 0: none), groups ("PATTERN:LR_SCALE:WEIGHT_DECAY;...", torch param
  groups in front of the default one), freeze (comma-separated patterns of
  parameters not trained) and lrs (the default group's lr at each step,
  comma-separated, as PyTorch's scheduler set it).

PyTorch runs the model in train mode (BatchNorm uses batch statistics and
updates running ones with momentum 0.1, i.e. ONNX momentum 0.9, unbiased
variance), torch.optim.SGD(lr, momentum, dampening=0, nesterov,
weight_decay) and nn.CrossEntropyLoss(label_smoothing) with mean reduction,
on CPU, one thread, deterministic algorithms. Dropout (simplecnn,
mobilenet_v3_small, efficientnet_b0) and StochasticDepth (efficientnet_b0) are
kept in eval mode (identity): the TorchScript exporter drops them from the
forward graph, so critlab trains those models without them.

The BatchNorm affine parameters and running statistics are randomised
before export (not 1 and 0), so a swapped scale/shift or mean/variance
cannot pass.

f32err_*: the same steps are repeated in float64; f32err_X is the largest
max|x32 - x64| / max(max|x64|, 1e-3) over the tensors of class X, i.e. how
far PyTorch's own float32 result is from the exact one. The Go test uses it
to justify its tolerance.

Run with the PyTorch venv (tools/requirements-torch.txt):

    python tools/make_reference.py [--out harness/testdata/torch] [--check-ort]
"""
from __future__ import annotations

import argparse
import copy
import fnmatch
import os
import sys

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import torch
import torch.nn as nn
import torchvision
from torchvision.models.efficientnet import _efficientnet_conf
from torchvision.models.mobilenetv3 import _mobilenet_v3_conf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_torch  # noqa: E402

FORMAT = "critlab-torchref-1"
BATCH = 8

# name -> (width, opset, image side, variants). Opsets differ on purpose:
# critlab reads 13..20. Small images and widths keep the fixtures small
# (each file under 1 MB); the torchvision models stride 32. A fixture is
# only an oracle where the step is well conditioned: mobilenet_v2 at
# width 0.1 is not (its float32 step moves 4e-3 from the float64 one with
# channels_last kernels, 1e-5 with the default ones, so f32err understates
# the noise); mobilenet_v3_small and efficientnet_b0 move 3e-6 and 3e-5.
MODELS = {
    "allcnn": (0.125, 13, 16, ("sgd", "nesterov")),       # channels 12,12,24,...,24,10
    "resnet18": (0.0625, 17, 16, ("sgd", "nesterov")),    # stages 4,8,16,32 channels
    "simplecnn": (0.25, 20, 16, ("sgd", "nesterov", "momentum", "adam", "adamw")),
    "mobilenet_v3_small": (0.25, 17, 32, ("sgd",)),       # Hardswish, squeeze-excitation, BN momentum 0.01
    "efficientnet_b0": (0.25, 17, 32, ("sgd",)),          # width and depth 0.25: 7 MBConv blocks, SiLU
}


def build(name: str, classes: int, width: float, image_size: int) -> nn.Module:
    """A built-in model of torch_models.py, or a torchvision classifier as
    torchvision builds it, with its width (and efficientnet's depth) scaled."""
    if name == "mobilenet_v3_small":
        setting, last = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=width)
        return torchvision.models.MobileNetV3(setting, last, num_classes=classes)
    if name == "efficientnet_b0":
        setting, last = _efficientnet_conf("efficientnet_b0", width_mult=width, depth_mult=width)
        return torchvision.models.EfficientNet(setting, 0.2, num_classes=classes, last_channel=last)
    return export_torch.build_model(name, classes=classes, width=width, image_size=image_size)

VARIANTS = {
    # plain SGD: no momentum, no weight decay, one step
    "sgd": dict(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, label_smoothing=0.0, steps=1),
    # Nesterov momentum, weight decay and label smoothing, three different batches
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, label_smoothing=0.1, steps=3),
    # heavy-ball momentum with weight decay, three different batches
    "momentum": dict(lr=0.05, momentum=0.9, nesterov=False, weight_decay=1e-3, label_smoothing=0.0, steps=3),
    # Adam with L2 weight decay, three batches. conv3.bias feeds a BatchNorm, so its true gradient is 0
    # and Adam would turn float32 rounding noise into lr-sized steps: it is frozen in the Adam variants.
    "adam": dict(optimizer="adam", lr=0.01, momentum=0.0, nesterov=False, weight_decay=1e-3, label_smoothing=0.0, steps=3,
                 freeze=("conv3.bias",)),
    # AdamW fine-tuning recipe: warmup, clipping, a head group at 10x lr without decay; five batches.
    # eps 1e-4: with the default 1e-8 a gradient at its rounding-noise level (fc1 has one, 1e-6 of
    # the largest) moves its weight by a step that differs between PyTorch and ORT by 10x PyTorch's
    # own float32 noise; a larger eps damps those and checks that eps is read.
    "adamw": dict(optimizer="adamw", lr=0.002, eps=1e-4, momentum=0.0, nesterov=False, weight_decay=0.05, label_smoothing=0.1,
                  steps=5, warmup_epochs=2, grad_clip=1.0, groups=(("fc2.*", 10.0, 0.0),), freeze=("conv3.bias",)),
}


def make_optimizer(model: nn.Module, hp: dict):
    """The torch optimizer and per-step scheduler of a variant."""
    kind = hp.get("optimizer", "sgd")
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"], dampening=0.0,
                               nesterov=hp["nesterov"], weight_decay=hp["weight_decay"], foreach=False), None
    for n, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(n, f) for f in hp.get("freeze", ())):
            p.requires_grad_(False)
    groups, rest = [], []
    claimed = set(id(p) for p in model.parameters() if not p.requires_grad)
    for pattern, scale, wd in hp.get("groups", ()):
        ps = [p for n, p in model.named_parameters() if fnmatch.fnmatchcase(n, pattern) and id(p) not in claimed]
        claimed.update(id(p) for p in ps)
        groups.append({"params": ps, "lr": hp["lr"] * scale, "weight_decay": wd})
    rest = [p for p in model.parameters() if id(p) not in claimed]
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    opt = cls([{"params": rest}] + groups, lr=hp["lr"], eps=hp.get("eps", 1e-8), weight_decay=hp["weight_decay"],
              foreach=False)
    sched = None
    if hp.get("warmup_epochs"):
        w = hp["warmup_epochs"]
        sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / (w + 1), end_factor=1.0, total_iters=w)
    return opt, sched


def setup_torch() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.enabled = False
    torch.backends.mkldnn.enabled = False


def randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Give every BatchNorm non-trivial affine parameters and running stats."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def batches(seed: int, steps: int, classes: int, image_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.randn(BATCH, 3, image_size, image_size, generator=gen)
        y = torch.randint(0, classes, (BATCH,), generator=gen)
        out.append((x, y))
    return out


def train(model: nn.Module, data, hp: dict, dtype: torch.dtype):
    """Run PyTorch's SGD steps; return per-step (loss, correct) and the end state."""
    model = copy.deepcopy(model).to(dtype)
    model.train()
    for m in model.modules():
        if isinstance(m, (nn.Dropout, torchvision.ops.StochasticDepth)):
            m.eval()  # identity, like the exported graph (see module doc)
    opt, sched = make_optimizer(model, hp)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hp["label_smoothing"])
    steps, lrs = [], []
    for x, y in data:
        logits = model(x.to(dtype))
        loss = loss_fn(logits, y)
        correct = int((logits.argmax(dim=1) == y).sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if hp.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"], foreach=False)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
        steps.append((float(loss.detach()), correct))
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = {n: b.detach().clone() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))}
    mom = {}
    for n, p in model.named_parameters():
        st = opt.state.get(p, {})
        if st.get("momentum_buffer") is not None:
            mom[n + ".mom"] = st["momentum_buffer"].detach().clone()
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                mom[f"{n}.{key}"] = st[key].detach().clone()
        if "step" in st:
            mom["optimizer.step"] = st["step"].detach().reshape(1).clone()
    model.eval()
    with torch.no_grad():
        x, y = data[0]
        logits = model(x.to(dtype))
        ev = (float(nn.functional.cross_entropy(logits, y)), int((logits.argmax(dim=1) == y).sum()))
    return steps, params, stats, mom, ev, lrs


def f32_error(a: dict, b: dict) -> float:
    worst = 0.0
    for k, v in a.items():
        ref = b[k].double()
        scale = max(float(ref.abs().max()), 1e-3)
        worst = max(worst, float((v.double() - ref).abs().max()) / scale)
    return worst


def make_ref(name: str, variant: str, model: nn.Module, width: float, classes: int, seed: int,
             image_size: int) -> onnx.ModelProto:
    hp = VARIANTS[variant]
    data = batches(seed, hp["steps"], classes, image_size)
    steps, params, stats, mom, ev, lrs = train(model, data, hp, torch.float32)
    steps64, params64, stats64, mom64, ev64, _ = train(model, data, hp, torch.float64)

    tensors = []
    for k, ((x, y), (loss, correct)) in enumerate(zip(data, steps), start=1):
        tensors.append(onnx.numpy_helper.from_array(x.numpy().astype(np.float32), f"images_{k}"))
        tensors.append(onnx.numpy_helper.from_array(y.numpy().astype(np.int64), f"labels_{k}"))
        tensors.append(onnx.numpy_helper.from_array(np.array(loss, dtype=np.float32), f"loss_{k}"))
        tensors.append(onnx.numpy_helper.from_array(np.array(correct, dtype=np.int64), f"correct_{k}"))
    tensors.append(onnx.numpy_helper.from_array(np.array(ev[0], dtype=np.float32), "eval_loss"))
    tensors.append(onnx.numpy_helper.from_array(np.array(ev[1], dtype=np.int64), "eval_correct"))
    for group in (params, stats, mom):
        for n, v in group.items():
            tensors.append(onnx.numpy_helper.from_array(v.numpy().astype(np.float32), n))

    loss_err = max(abs(a[0] - b[0]) / max(abs(b[0]), 1e-3) for a, b in zip(steps + [ev], steps64 + [ev64]))
    meta = {
        "format": FORMAT,
        "forward": f"{name}.onnx",
        "model": name,
        "variant": variant,
        "width": repr(width),
        "classes": str(classes),
        "image_size": str(image_size),
        "batch_size": str(BATCH),
        "steps": str(hp["steps"]),
        "lr": repr(hp["lr"]),
        "momentum": repr(hp["momentum"]),
        "nesterov": "true" if hp["nesterov"] else "false",
        "weight_decay": repr(hp["weight_decay"]),
        "decay_bias_bn": "true",
        "label_smoothing": repr(hp["label_smoothing"]),
        "bn_momentum_torch": "0.1",
        "dropout": "eval",
        "seed": str(seed),
        "torch": torch.__version__,
        "f32err_loss": f"{loss_err:.3g}",
        "f32err_params": f"{f32_error(params, params64):.3g}",
        "f32err_stats": f"{f32_error(stats, stats64):.3g}",
        "f32err_mom": f"{f32_error(mom, mom64):.3g}" if mom else "0",
    }
    if hp.get("optimizer", "sgd") != "sgd":
        meta.update({
            "optimizer": hp["optimizer"],
            "eps": repr(hp.get("eps", 1e-8)),
            "warmup_epochs": str(hp.get("warmup_epochs", 0)),
            "grad_clip": repr(hp.get("grad_clip", 0.0)),
            "groups": ";".join(f"{p}:{s!r}:{wd!r}" for p, s, wd in hp.get("groups", ())),
            "freeze": ",".join(hp.get("freeze", ())),
            "lrs": ",".join(repr(lr) for lr in lrs),
        })
    graph = onnx.helper.make_graph([], f"{name}.{variant}.ref", [], [], initializer=tensors)
    ref = onnx.helper.make_model(graph, producer_name="critlab tools/make_reference.py",
                                 opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.helper.set_model_props(ref, meta)
    for (loss, correct), (l64, c64) in zip(steps, steps64):
        if correct != c64:
            print(f"  warning: {name}.{variant}: float32 correct {correct} != float64 {c64} (near tie)")
    return ref


def check_ort(model: nn.Module, path: str, classes: int, seed: int, image_size: int) -> None:
    """Cross-check the exported forward pass with onnxruntime, when installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("  (onnxruntime not installed: forward cross-check skipped)")
        return
    x = batches(seed + 1000, 1, classes, image_size)[0][0]
    model.eval()
    with torch.no_grad():
        want = model(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"images": x.numpy()})[0]
    err = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    if err > 1e-5 * max(scale, 1.0):
        raise SystemExit(f"{path}: ORT logits differ from PyTorch by {err:.3g} (scale {scale:.3g})")
    print(f"  ORT forward matches PyTorch eval logits: max |diff| {err:.2g} (scale {scale:.3g})")


def check_same_weights(model: nn.Module, path: str) -> None:
    """Refuse to add fixtures to a forward graph made from other weights."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    for n, v in model.state_dict().items():
        if n in inits and not np.array_equal(inits[n], v.numpy()):
            raise SystemExit(f"{path}: {n} differs from the model built now; remake every fixture (no --variants)")


def main(argv: list[str] | None = None) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(root, "harness", "testdata", "torch"), help="output folder")
    p.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    p.add_argument("--only", nargs="*", choices=list(MODELS), help="make only these models")
    p.add_argument("--check-ort", action="store_true", help="compare ORT's forward logits with PyTorch's (needs onnxruntime)")
    p.add_argument("--variants", nargs="*", choices=list(VARIANTS),
                   help="make only these variants, keeping the committed forward graphs (checked to hold the same weights)")
    args = p.parse_args(argv)
    setup_torch()
    os.makedirs(args.out, exist_ok=True)
    classes = 10
    for i, (name, (width, opset, image_size, variants)) in enumerate(MODELS.items()):
        if args.only and name not in args.only:
            continue
        seed = args.seed + 100 * i
        torch.manual_seed(seed)
        model = build(name, classes, width, image_size)
        randomise_bn(model, torch.Generator().manual_seed(seed + 1))
        fwd_path = os.path.join(args.out, f"{name}.onnx")
        if args.variants:
            check_same_weights(model, fwd_path)
        else:
            proto = export_torch.export_model(model, fwd_path, opset=opset, image_size=image_size)
            print(f"{fwd_path}: {export_torch.describe(proto)} [{os.path.getsize(fwd_path)} bytes]")
        if args.check_ort:
            check_ort(model, fwd_path, classes, seed, image_size)
        for v in variants:
            if args.variants and v not in args.variants:
                continue
            ref = make_ref(name, v, model, width, classes, seed + 10, image_size)
            path = os.path.join(args.out, f"{name}.{v}.ref.onnx")
            onnx.save(ref, path)
            meta = {p.key: p.value for p in ref.metadata_props}
            print(f"{path}: {meta['steps']} steps, f32err loss {meta['f32err_loss']} params {meta['f32err_params']} "
                  f"stats {meta['f32err_stats']} mom {meta['f32err_mom']} [{os.path.getsize(path)} bytes]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
