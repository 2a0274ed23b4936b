"""ResNet-50 for the workloads: torchvision's when it is installed, else the same network in plain torch.nn.

GPU hosts often carry a CUDA build of torch and nothing else (no torchvision, no network to install it). The
fallback is the torchvision v1.5 layout (bottleneck blocks [3, 4, 6, 3], stride on the 3x3 convolution),
random weights, so the GPU work per batch is the same whichever is used.
"""


def resnet50(num_classes=1000):
    """(model, source): source is "torchvision" or "torch.nn" (the fallback)."""
    try:
        import torchvision

        return torchvision.models.resnet50(weights=None, num_classes=num_classes), "torchvision"
    except Exception:  # missing, or built for another torch (its import then raises RuntimeError)
        return _ResNet50(num_classes), "torch.nn"


def _ResNet50(num_classes):
    import torch.nn as nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            width = planes
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != planes * 4:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(planes * 4))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
            layers, inplanes = [], 64
            for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for i in range(blocks):
                    layers.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                    inplanes = planes * 4
            self.layers = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(2048, num_classes)

        def forward(self, x):
            return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))

    return ResNet()
