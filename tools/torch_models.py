"""The built-in PyTorch models of critlab's tools, importing only torch and
torchvision: export_torch.py exports them to ONNX, make_reference.py makes
the reference fixtures from them and torch_bench.py times them on a GPU
machine whose PyTorch has no onnx package.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn



def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def cifar_resnet18(num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """torchvision ResNet-18 for 32x32 images, optionally thinner.

    The stem is a 3x3 stride-1 convolution, the max pool is an Identity and
    the stages have 64*width, 128*width, 256*width, 512*width channels. The
    module is torchvision's ResNet with torchvision's BasicBlock, rebuilt
    with those widths, so its forward and its state_dict names are
    torchvision's.
    """
    from torchvision.models.resnet import BasicBlock, ResNet

    class CifarResNet(ResNet):
        def __init__(self) -> None:
            super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
            w = [_scaled(c, width) for c in (64, 128, 256, 512)]
            self.inplanes = w[0]
            self.conv1 = nn.Conv2d(3, w[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = self._norm_layer(w[0])
            self.maxpool = nn.Identity()
            self.layer1 = self._make_layer(BasicBlock, w[0], 2)
            self.layer2 = self._make_layer(BasicBlock, w[1], 2, stride=2)
            self.layer3 = self._make_layer(BasicBlock, w[2], 2, stride=2)
            self.layer4 = self._make_layer(BasicBlock, w[3], 2, stride=2)
            self.fc = nn.Linear(w[3] * BasicBlock.expansion, num_classes)
            # torchvision's initialisation, applied to the rebuilt modules.
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    return CifarResNet()


class AllCNN(nn.Module):
    """All-CNN-C with BatchNorm after every convolution (Achille et al. 2019).

    Parameter names: features.{0,3,6,...}.weight for the convolutions (no
    bias: BatchNorm follows), features.{1,4,...}.* for the BatchNorms.
    """

    CHANNELS = (96, 96, 192, 192, 192, 192, 192, 192)
    STRIDES = (1, 1, 2, 1, 1, 2, 1, 1, 1)
    KERNELS = (3, 3, 3, 3, 3, 3, 3, 1, 1)

    def __init__(self, num_classes: int = 10, width: float = 1.0, conv_bias: bool = False) -> None:
        super().__init__()
        chans = [_scaled(c, width) for c in self.CHANNELS] + [num_classes]
        layers: list[nn.Module] = []
        cin = 3
        for cout, stride, k in zip(chans, self.STRIDES, self.KERNELS):
            layers += [
                nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, bias=conv_bias),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.features(x)))


class SimpleCNN(nn.Module):
    """A hand-written CNN covering MaxPool, AveragePool, Flatten, Dropout, Gemm.

    The TorchScript exporter drops Dropout from an inference graph, so the
    exported ONNX has no Dropout node; critlab trains it without dropout.
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0, image_size: int = 32,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if image_size % 8:
            raise ValueError(f"simplecnn: image size {image_size} is not a multiple of 8")
        c = [_scaled(n, width) for n in (32, 64, 128)]
        self.conv1 = nn.Conv2d(3, c[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.conv2 = nn.Conv2d(c[0], c[1], 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c[1])
        self.conv3 = nn.Conv2d(c[1], c[2], 3, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(c[2])
        self.maxpool = nn.MaxPool2d(2)
        self.avgpool = nn.AvgPool2d(2)
        self.flatten = nn.Flatten(1)
        side = image_size // 8
        hidden = _scaled(128, width)
        self.fc1 = nn.Linear(c[2] * side * side, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.maxpool(torch.relu(self.bn2(self.conv2(x))))
        x = self.avgpool(torch.relu(self.bn3(self.conv3(x))))
        x = self.dropout(torch.relu(self.fc1(self.flatten(x))))
        return self.fc2(x)


class SmallNet(nn.Module):
    """critlab's zoo "small": conv 32, 32(s2), 64, 64(s2), 128 (3x3, pad 1,
    no bias), each followed by BatchNorm and ReLU, global average pool,
    Linear to the classes (models/zoo/small.go)."""

    def __init__(self, num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for c, stride in ((32, 1), (32, 2), (64, 1), (64, 2), (128, 1)):
            cout = _scaled(c, width)
            layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


TORCHVISION_PREFIX = "tv:"


def torchvision_model(name: str, classes: int = 10, image_size: int = 32) -> nn.Module:
    """torchvision.models.NAME(num_classes=classes), untrained, as built.

    vgg's classifier takes 512x7x7 from an adaptive pool that ONNX can only
    export when 7 divides the feature map (224 px: 7x7); at smaller images
    it pools to 1x1 and its first linear layer takes 512 inputs. googlenet
    is built without its auxiliary heads (their outputs are a train-mode
    tuple).
    """
    import torchvision

    fn = getattr(torchvision.models, name, None)
    if not callable(fn) or name.startswith("_") or name[0].isupper():
        raise ValueError(f"torchvision.models has no model {name!r}")
    kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    m = fn(num_classes=classes, **kw)
    if name.startswith("vgg") and (image_size // 32) % 7:
        m.avgpool = nn.AdaptiveAvgPool2d(1)
        m.classifier[0] = nn.Linear(512, m.classifier[0].out_features)
    return m


MODELS: dict[str, tuple[str, Callable[..., nn.Module]]] = {
    "resnet18": ("torchvision ResNet-18 for CIFAR (3x3 stem, no max pool)",
                 lambda classes, width, image_size: cifar_resnet18(classes, width)),
    "allcnn": ("All-CNN-C with BatchNorm (critical-period papers)",
               lambda classes, width, image_size: AllCNN(classes, width)),
    "simplecnn": ("hand-written conv/bn/pool/dropout/linear CNN",
                  lambda classes, width, image_size: SimpleCNN(classes, width, image_size)),
    "small": ("critlab's zoo small: five conv-bn-relu, global average pool, linear",
              lambda classes, width, image_size: SmallNet(classes, width)),
}


def build_model(name: str, classes: int = 10, width: float = 1.0, image_size: int = 32) -> nn.Module:
    """Build a built-in model by name (see MODELS), or tv:NAME, torchvision's
    model NAME (torchvision_model; width must be 1)."""
    if name.startswith(TORCHVISION_PREFIX):
        if width != 1:
            raise ValueError(f"{name}: torchvision models have no width option")
        return torchvision_model(name[len(TORCHVISION_PREFIX):], classes, image_size)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; built-in models: {', '.join(MODELS)}")
    if width <= 0:
        raise ValueError(f"width {width} must be positive")
    return MODELS[name][1](classes, width, image_size)
