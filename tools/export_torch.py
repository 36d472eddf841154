#!/usr/bin/env python3
"""Export a PyTorch CNN to an ONNX forward graph that critlab can train.

critlab compiles a forward graph (one float32 input ``images`` N x 3 x H x W,
one float32 output ``logits`` N x classes, parameters as initializers) into a
training graph; see docs/design.md. This script produces such a graph from
PyTorch:

    python tools/export_torch.py resnet18 -o resnet18.onnx
    python tools/export_torch.py allcnn --width 0.5 --opset 13 -o allcnn.onnx
    python tools/export_torch.py --module my_net.py:build -o mine.onnx
    python tools/export_torch.py --list

Built-in models (``--list``):

  resnet18   torchvision's ResNet-18 adapted to CIFAR: 3x3 stride-1 stem, no
             max pool, ``fc`` to ``--classes``; ``--width`` scales every
             stage (1.0 = 64,128,256,512 channels). Built from torchvision's
             own ResNet/BasicBlock, so parameter names are torchvision's
             (conv1.weight, layer1.0.bn1.running_mean, fc.bias, ...).
  allcnn     All-CNN-C with BatchNorm, as in the critical-period papers: nine
             convs with 96,96,192,192,192,192,192,192,classes channels
             (scaled by ``--width``, the last stays ``classes``), strides
             1,1,2,1,1,2,1,1,1, 3x3 kernels (pad 1) then two 1x1, each
             followed by BatchNorm and ReLU, global average pool, flatten.
  simplecnn  a hand-written conv-bn-relu-maxpool x2, conv-bn-relu-avgpool,
             flatten, linear-relu-dropout-linear network (base 32 channels
             scaled by ``--width``); its linear layer depends on
             ``--image-size``.
  small      critlab's zoo "small" (five conv-bn-relu, pool, linear).
  tv:NAME    torchvision.models.NAME(num_classes=``--classes``), untrained
             (``critlab bench --torch`` exports ``tv:resnet18`` this way).

Export flags (the reason for each is in tools/README.md):

    torch.onnx.export(model.eval(), (x,), path,
        dynamo=False,                          # TorchScript exporter
        training=torch.onnx.TrainingMode.EVAL, # BatchNormalization in inference form
        do_constant_folding=False,             # no Conv+BN fusion
        export_params=True, keep_initializers_as_inputs=False,
        opset_version=OPSET,                   # 13..20
        input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}})

then ``undo_deduplication`` turns the Identity nodes by which the exporter
shares initializers of equal value (a fresh BatchNorm's bias and running
mean are both zero) back into one initializer per state_dict entry, and
``check_exported`` proves the result: a valid model, one BatchNormalization
node per BatchNorm module with the running statistics as initializers, every
parameter and buffer an initializer under its state_dict name, a symbolic
batch dimension.

As a library (tools/make_reference.py uses it)::

    from export_torch import build_model, export_model
    export_model(build_model("allcnn", width=0.25), "allcnn.onnx", opset=17)
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import os
import sys
import tempfile
import traceback
import typing
import warnings
from typing import Callable

import onnx
import onnx.checker
import onnx.numpy_helper
import onnx.shape_inference

import torch
import torch.nn as nn

OPSET_MIN, OPSET_MAX, OPSET_DEFAULT = 13, 20, 17
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "images", "logits", "N"


from torch_models import MODELS, build_model  # noqa: E402,F401  (build_model is part of this module's API)


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """Resolve ``path/to/file.py:function`` to a model factory."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path or not func:
        raise ValueError(f"--module {spec!r}: want FILE.py:FUNCTION")
    mod_spec = importlib.util.spec_from_file_location("critlab_user_model", path)
    if mod_spec is None or mod_spec.loader is None:
        raise ValueError(f"--module {spec!r}: cannot import {path}")
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise ValueError(f"--module {spec!r}: {path} has no function {func}")
    return fn


# ---------------------------------------------------------------- export


class ExportError(Exception):
    """The export failed or broke one of critlab's forward-graph conventions;
    the message is one line."""


# Hints for torch.onnx.export failures, by a phrase of the exception's first
# line: (phrase, fix).
EXPORT_HINTS = (
    ("is not supported", "replace that op in the model by ones ONNX has, or register a symbolic for it "
     "(torch.onnx.register_custom_op_symbolic); a higher --opset (up to 20) helps only if a later opset added it"),
    ("not factor of input size", "trace at an --image-size where the adaptive pool's output size divides its input "
     "(torchvision's vgg: 224), or make the pool's output 1x1 (nn.AdaptiveAvgPool2d(1))"),
)


def export_failure(e: BaseException, log: str | None) -> ExportError:
    """One line for a torch.onnx.export failure: what failed, the fix where
    known, and where the full trace is."""
    lines = str(e).strip().splitlines()
    what = lines[0] if lines else ""
    for noise in (" Please feel free to request support", " [Caused by"):
        what = what.split(noise)[0]
    msg = f"torch.onnx.export failed: {type(e).__name__}: {what.strip().rstrip('.')}"
    fix = next((f for phrase, f in EXPORT_HINTS if phrase in what), None)
    if fix:
        msg += f"; fix: {fix}"
    return ExportError(msg + (f" (full trace: {log}, or rerun with --verbose)" if log else " (full trace above)"))


@contextlib.contextmanager
def exporter_output_to(log: typing.IO[bytes] | None):
    """Send what the exporter prints to log, file descriptors 1 and 2
    included: on failure PyTorch's C++ side dumps the whole graph to stdout.
    With log None, nothing is redirected."""
    if log is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class RowDropout(nn.Module):
    """torchvision's StochasticDepth in row mode written with a Dropout:
    x times nn.Dropout(p) of ones shaped [N,1,...,1], so each sample's
    branch is kept with probability 1-p and scaled by 1/(1-p), as
    StochasticDepth does, and critlab draws the N masks from the run's seed."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.drop(torch.ones_like(x[(slice(None),) + (slice(0, 1),) * (x.dim() - 1)]))


def stochastic_depth_as_dropout(model: nn.Module) -> nn.Module:
    """A copy of model whose StochasticDepth modules are RowDropout, or
    model itself when it has none."""
    try:
        from torchvision.ops import StochasticDepth
    except ImportError:
        return model
    if not any(isinstance(m, StochasticDepth) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, StochasticDepth):
                if child.mode != "row":
                    where = f"{parent_name}.{name}" if parent_name else name
                    raise ExportError(f"StochasticDepth {where}: mode={child.mode!r} drops the whole batch at once, "
                                      "which critlab's per-sample masks cannot express; use mode='row' or export without --dropout")
                setattr(parent, name, RowDropout(child.p))
    return model


def export_model(model: nn.Module, path: str | None = None, *, opset: int = OPSET_DEFAULT,
                 image_size: int = 32, channels: int = 3, check: bool = True,
                 dropout: bool = False, verbose: bool = False, log: str | None = None) -> onnx.ModelProto:
    """Export ``model`` as a critlab forward graph; write it to ``path`` if given.

    The model is exported in eval mode (its training flag is restored after).
    With ``dropout`` its nn.Dropout modules stay in train mode and are
    exported as Dropout nodes (TrainingMode.PRESERVE), which critlab trains
    with masks drawn from the run's seed; torchvision's StochasticDepth
    (row mode) is exported as a RowDropout, a Dropout of one value per
    sample. Returns the checked ModelProto.

    What torch.onnx.export prints goes to a log file (``log``, else
    PATH.export.log next to ``path``, else a temporary file) and is copied to
    stderr when the export succeeds; when it fails, the log gets the
    traceback too and ExportError says in one line what failed, the fix
    where known, and the log's path. With ``verbose`` nothing is redirected.
    """
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise ValueError(f"opset {opset} outside {OPSET_MIN}..{OPSET_MAX}")
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.momentum is None:
                raise ExportError(f"BatchNorm {name}: momentum=None (cumulative average) has no ONNX form; set a momentum")
            if not m.track_running_stats or m.running_mean is None:
                raise ExportError(f"BatchNorm {name}: track_running_stats=False has no ONNX inference form")
    traced = stochastic_depth_as_dropout(model) if dropout else model
    was_training = traced.training
    traced.eval()
    if dropout:
        for m in traced.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train()
    x = torch.zeros(2, channels, image_size, image_size)
    buf = io.BytesIO()
    if verbose:
        logf = None
    elif log or path:
        log = log or os.path.splitext(path)[0] + ".export.log"
        logf = open(log, "w+b")
    else:
        fd, log = tempfile.mkstemp(prefix="export_torch-", suffix=".log")
        logf = os.fdopen(fd, "w+b")
    try:
        with exporter_output_to(logf), warnings.catch_warnings():
            # The TorchScript exporter is deprecated but still the one that
            # keeps BatchNormalization as its own node; silence the notice.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*will be removed.*")
            torch.onnx.export(
                traced, (x,), buf,
                dynamo=False,
                training=torch.onnx.TrainingMode.PRESERVE if dropout else torch.onnx.TrainingMode.EVAL,
                do_constant_folding=False,
                export_params=True,
                keep_initializers_as_inputs=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
            )
    except Exception as e:  # noqa: BLE001  (whatever the exporter raises becomes one line)
        if logf is None:
            raise export_failure(e, None) from e
        logf.write(traceback.format_exc().encode())
        logf.close()
        raise export_failure(e, log) from e
    finally:
        traced.train(was_training)
    if logf is not None:  # success: show what the exporter said, keep no log
        logf.seek(0)
        sys.stderr.write(logf.read().decode(errors="replace"))
        logf.close()
        os.remove(log)
    proto = onnx.load_from_string(buf.getvalue())
    undo_deduplication(proto)
    proto.producer_name = "critlab tools/export_torch.py"
    proto.producer_version = torch.__version__
    if check:
        check_exported(proto, model)
    if path:
        onnx.save(proto, path)
    return proto


def undo_deduplication(proto: onnx.ModelProto) -> int:
    """Replace ``Identity(initializer)`` nodes by copies of the initializer.

    The TorchScript exporter stores initializers of equal value once and
    makes the others Identity nodes (``1.running_mean = Identity(1.bias)``):
    a fresh BatchNorm's bias and running mean are both zero, and all its
    weights and running variances are one. critlab must see each parameter
    as its own initializer, so each such Identity becomes an initializer
    named after its output. Returns the number of nodes replaced.
    """
    g = proto.graph
    inits = {t.name: t for t in g.initializer}
    replaced = 0
    changed = True
    while changed:  # chains of Identity nodes, if any
        changed = False
        keep = []
        for n in g.node:
            if n.op_type == "Identity" and len(n.input) == 1 and n.input[0] in inits and n.output[0] not in inits:
                t = onnx.TensorProto()
                t.CopyFrom(inits[n.input[0]])
                t.name = n.output[0]
                g.initializer.append(t)
                inits[t.name] = t
                replaced += 1
                changed = True
            else:
                keep.append(n)
        del g.node[:]
        g.node.extend(keep)
    return replaced


def check_exported(proto: onnx.ModelProto, model: nn.Module | None = None) -> None:
    """Check critlab's forward-graph conventions; raise ExportError if broken."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # onnx raises ValidationError / InferenceError
        raise ExportError(f"onnx.checker: {e}") from e
    g = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise ExportError(f"opset {opset} outside {OPSET_MIN}..{OPSET_MAX}")
    if [i.name for i in g.input] != [INPUT_NAME]:
        raise ExportError(f"graph inputs {[i.name for i in g.input]}, want [{INPUT_NAME!r}] (parameters must be initializers only)")
    if [o.name for o in g.output] != [OUTPUT_NAME]:
        raise ExportError(f"graph outputs {[o.name for o in g.output]}, want [{OUTPUT_NAME!r}]")
    for vi in (g.input[0], g.output[0]):
        d0 = vi.type.tensor_type.shape.dim[0]
        if d0.HasField("dim_value"):
            raise ExportError(f"{vi.name}: batch dimension is fixed at {d0.dim_value}; export with dynamic_axes")
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ExportError(f"{vi.name}: element type {vi.type.tensor_type.elem_type}, want FLOAT")
    inits = {t.name for t in g.initializer}
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            raise ExportError(f"node {n.name} ({n.domain}::{n.op_type}): not a standard ONNX op")
        if n.op_type == "BatchNormalization":
            if len(n.output) != 1:
                raise ExportError(f"node {n.name}: BatchNormalization in training form ({len(n.output)} outputs)")
            for s in n.input[3:5]:
                if s not in inits:
                    raise ExportError(f"node {n.name}: running statistic {s!r} is not an initializer")
    if model is None:
        return
    bn_modules = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    bn_nodes = [n for n in g.node if n.op_type == "BatchNormalization"]
    if len(bn_nodes) != len(bn_modules):
        raise ExportError(f"{len(bn_nodes)} BatchNormalization nodes for {len(bn_modules)} BatchNorm modules: "
                          "BatchNorm was fused into a convolution (export with do_constant_folding=False)")
    want = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing = sorted(want - inits)
    if missing:
        raise ExportError(f"state_dict entries that are not initializers: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    bn_stats = {s for n in bn_nodes for s in n.input[3:5]}
    want_stats = {f"{m}.{s}" for m in bn_modules for s in ("running_mean", "running_var")}
    if bn_stats != want_stats:
        raise ExportError(f"BatchNormalization running statistics {sorted(bn_stats - want_stats)[:4]} "
                          f"are not state_dict names {sorted(want_stats - bn_stats)[:4]}")
    sd = model.state_dict()
    for t in g.initializer:
        if t.name in want:
            a = onnx.numpy_helper.to_array(t)
            b = sd[t.name].detach().cpu().numpy()
            if a.shape != b.shape or not (a == b).all():
                raise ExportError(f"initializer {t.name} differs from the state_dict value")


def describe(proto: onnx.ModelProto) -> str:
    """One line: op counts, parameter count, opset."""
    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    params = sum(int(onnx.numpy_helper.to_array(t).size) for t in proto.graph.initializer)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    op_list = ", ".join(f"{k}x{v}" for k, v in sorted(ops.items()))
    return f"opset {opset}, {len(proto.graph.initializer)} initializers ({params} values), ops: {op_list}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="export_torch.py",
        description="Export a PyTorch CNN to an ONNX forward graph critlab trains "
                    "(input 'images' N x 3 x H x W, output 'logits', BatchNorm kept as separate nodes).",
        epilog="Bring your own model: --module FILE.py:FUNC, where FUNC() returns an nn.Module "
               "(see tools/README.md).")
    p.add_argument("model", nargs="?", help="built-in model name (see --list)")
    p.add_argument("-o", "--output", help="output ONNX file (default MODEL.onnx)")
    p.add_argument("--list", action="store_true", help="list the built-in models and exit")
    p.add_argument("--module", metavar="FILE.py:FUNC", help="export the nn.Module FUNC() returns instead of a built-in model")
    p.add_argument("--weights", metavar="STATE_DICT.pt", help="load these weights (torch.save(model.state_dict())) before export")
    p.add_argument("--opset", type=int, default=OPSET_DEFAULT, help=f"ONNX opset, {OPSET_MIN} to {OPSET_MAX} (default {OPSET_DEFAULT})")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1.0)")
    p.add_argument("--image-size", type=int, default=32, help="image side used for tracing (default 32)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the initial weights (default 0)")
    p.add_argument("--dropout", action="store_true",
                   help="keep nn.Dropout and torchvision's StochasticDepth as Dropout nodes "
                        "(critlab trains them with seeded masks)")
    p.add_argument("--verbose", action="store_true",
                   help="let the exporter print its traces here (by default an export error is one line "
                        "naming a log file with them)")
    args = p.parse_args(argv)

    if args.list:
        for name, (doc, _) in MODELS.items():
            print(f"{name:10s} {doc}")
        return 0
    if not args.model and not args.module:
        p.error("name a built-in model (see --list) or give --module FILE.py:FUNC")
    if args.model and args.module:
        p.error("give a built-in model or --module, not both")
    if not OPSET_MIN <= args.opset <= OPSET_MAX:
        p.error(f"--opset {args.opset}: critlab reads opsets {OPSET_MIN} to {OPSET_MAX}")

    torch.manual_seed(args.seed)
    try:
        if args.module:
            model = load_factory(args.module)()
            if not isinstance(model, nn.Module):
                raise ValueError(f"--module {args.module}: returned {type(model).__name__}, not an nn.Module")
            default_out = args.module.rpartition(":")[2] + ".onnx"
        else:
            model = build_model(args.model, args.classes, args.width, args.image_size)
            default_out = args.model + ".onnx"
        if args.weights:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        out = args.output or default_out
        proto = export_model(model, out, opset=args.opset, image_size=args.image_size, dropout=args.dropout,
                             verbose=args.verbose)
    except (ValueError, ExportError, OSError) as e:
        if args.verbose:
            traceback.print_exc()
        print(f"export_torch: {args.module or args.model}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {describe(proto)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
