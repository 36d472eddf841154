#!/usr/bin/env python3
"""Write the exporter fixtures in models/compiler/testdata/exports/.

One tiny conv/BN/dropout CNN (and a ConvNeXt-style LayerNorm/GELU block),
exported the ways users export, not the way tools/export_torch.py does:

  dynamo_default.onnx   torch.onnx.export(model, (x,), path): the dynamo
                        exporter's defaults (BatchNorm folded, fixed batch,
                        weights in dynamo_default.onnx.data)
  dynamo_noopt.onnx     dynamo=True, optimize=False, external_data=False
                        (ReduceMean axes as inputs, CastLike, BatchNorm kept)
  dynamo_opset22.onnx   the same at opset 22
  script_default.onnx   dynamo=False with its defaults (BatchNorm folded by
                        constant folding, equal initializers tied through
                        Identity nodes)
  script_tied.onnx      dynamo=False, opset 13, export_torch.py's flags but
                        without its undo_deduplication: bn2's zero bias and
                        running mean tied through an Identity node
  lngelu_dynamo.onnx    the LayerNorm/GELU net, dynamo=True, optimize=False
                        (opset 20: Gelu as one op)
  lngelu_script.onnx    the same, dynamo=False, opset 17 (GELU as Erf)
  dynamo_train.onnx     a fresh TinyNet that flattens like torchvision,
                        still in train mode, with the dynamo defaults: the
                        rewriter fuses BatchNorm into the convolutions and
                        drops their zero biases (only node metadata tells),
                        and the flatten is a Reshape with allowzero=1
  script_dropout.onnx   tools/export_torch.py --dropout: nn.Dropout kept as
                        a Dropout node (TrainingMode.PRESERVE)
  dynamo_sd.onnx        the LayerNorm/GELU net with torchvision's
                        StochasticDepth on its residual branch, in train
                        mode, dynamo defaults but a symbolic batch: the mask
                        is drawn by a RandomUniformLike node (no .ref.onnx:
                        its output is random)
  script_sd.onnx        the same net through tools/export_torch.py
                        --dropout: StochasticDepth becomes a Dropout of one
                        value per sample (export_torch.RowDropout)

Each NAME.onnx but dynamo_sd comes with NAME.ref.onnx: a ModelProto without nodes whose
initializers `images` (4×3×8×8) and `logits` are PyTorch's eval-mode output,
the oracle of the Go tests (models/compiler, harness). Run with the PyTorch
venv (tools/requirements-torch.txt); names given write only those fixtures:

    /work/torchenv/bin/python tools/make_exports.py [NAME ...]
"""
from __future__ import annotations

import os
import sys
import warnings

import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

ONLY = set(sys.argv[1:])
OUT = os.path.join(os.path.dirname(__file__), "..", "models", "compiler", "testdata", "exports")


class TinyNet(nn.Module):
    """conv-BN-ReLU, conv-BN-ReLU (stride 2), global pool, dropout, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = x.mean(dim=(2, 3))
        return self.fc(self.drop(x))


class LnGelu(nn.Module):
    """A ConvNeXt-style block: depthwise conv, channels-last LayerNorm, GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, stride=2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.norm = nn.LayerNorm(8)
        self.pw1 = nn.Linear(8, 16)
        self.pw2 = nn.Linear(16, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(nn.functional.gelu(self.pw1(self.norm(y))))
        x = x + y.permute(0, 3, 1, 2)
        return self.head(x.mean(dim=(2, 3)))


class TinyFlat(TinyNet):
    """TinyNet pooled and flattened as torchvision's classifiers do."""

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.drop(x))


class LnGeluSD(LnGelu):
    """LnGelu whose residual branch goes through StochasticDepth (row mode)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.ops import StochasticDepth
        self.sd = StochasticDepth(0.2, "row")

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(nn.functional.gelu(self.pw1(self.norm(y))))
        x = x + self.sd(y.permute(0, 3, 1, 2))
        return self.head(x.mean(dim=(2, 3)))


def randomise(model: nn.Module) -> nn.Module:
    """bn1's statistics and affine parameters away from their defaults; bn2
    stays fresh, so its zero bias and running mean are equal (the TorchScript
    exporter ties them through an Identity node)."""
    g = torch.Generator().manual_seed(3)
    m = model.bn1
    m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
    m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
    m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=g)
    m.running_var = 1 + 0.3 * torch.rand(m.running_var.shape, generator=g)
    return model


def export(model: nn.Module, name: str, ref: bool = True, **kw) -> None:
    if ONLY and name not in ONLY:
        return
    path = os.path.join(OUT, name + ".onnx")
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    x = torch.zeros(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kw.pop("export_torch_dropout", False):
            from export_torch import export_model
            export_model(model, path, opset=17, image_size=8, dropout=True)
        else:
            torch.onnx.export(model, (x,), path, **kw)
    images = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    was_training = model.training
    with torch.no_grad():
        logits = model.eval()(images)
    model.train(was_training)
    if ref:
        onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], name, [], [], initializer=[
            onnx.numpy_helper.from_array(images.numpy(), "images"),
            onnx.numpy_helper.from_array(logits.numpy(), "logits")])), os.path.join(OUT, name + ".ref.onnx"))
    m = onnx.load(path, load_external_data=False)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{name}: opset {m.opset_import[0].version}, ops {', '.join(ops)}", file=sys.stderr)


def main() -> None:
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tiny = randomise(TinyNet()).eval()
    export(tiny, "dynamo_default")
    export(tiny, "dynamo_noopt", optimize=False, external_data=False)
    export(tiny, "dynamo_opset22", optimize=False, external_data=False, opset_version=22)
    export(tiny, "script_default", dynamo=False)
    export(tiny, "script_tied", dynamo=False, opset_version=13, do_constant_folding=False,
           training=torch.onnx.TrainingMode.EVAL, input_names=["images"], output_names=["logits"],
           dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}})
    ln = LnGelu().eval()
    export(ln, "lngelu_dynamo", optimize=False, external_data=False)
    export(ln, "lngelu_script", dynamo=False, opset_version=17, input_names=["images"],
           dynamic_axes={"images": {0: "N"}})
    export(TinyFlat(), "dynamo_train")
    export(tiny, "script_dropout", export_torch_dropout=True)
    export(LnGeluSD(), "dynamo_sd", ref=False, input_names=["images"], dynamic_axes={"images": {0: "N"}})
    export(LnGeluSD(), "script_sd", export_torch_dropout=True)


if __name__ == "__main__":
    main()
