"""The two fixed networks PriCheXy-Net is trained against, scaled to the data at hand.

- :class:`SiameseVerifier`: is this pair of radiographs one patient? Both images go through one
  backbone to a 128-d feature squashed by a sigmoid; the absolute difference of the two features
  goes through one linear layer to a logit (Packhäuser et al. 2022, the verifier of PriCheXy-Net).
  The paper's backbone is an ImageNet-pretrained ResNet-50 at 256 px; here it is a ResNet-18
  layout at a quarter of its width (16-32-64-128), trained from scratch at 64 px, since no
  pretrained weights may be fetched and the training runs on two CPU cores.
- :class:`AbnormalityClassifier`: the 14 ChestX-ray14 labels. The paper's is an ImageNet-pretrained
  DenseNet-121 (CheXNet) at 224 px; here it is a DenseNet-BC with the same four dense blocks but
  growth rate 12 and blocks of (4, 8, 12, 8) layers, from scratch, at 64 px.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
          "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNetSmall(nn.Module):
    """ResNet-18's layout (two basic blocks a stage) at ``widths``; a 3x3 stride-1 stem for 64 px."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), out_features: int = 128):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers = []
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] to roughly zero mean, unit variance (the single-channel counterpart of the
    paper's ImageNet normalisation)."""
    return (x - 0.5) / 0.25


class SiameseVerifier(nn.Module):
    """Two radiographs in [0, 1] -> logit that they show the same patient."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.backbone = ResNetSmall(widths, 128)
        self.fc_end = nn.Linear(128, 1)
        # Start as "the closer the features (L1), the likelier one patient": from scratch, the
        # default small random weights pass almost no gradient back through |a - b|.
        nn.init.constant_(self.fc_end.weight, -1.0)
        nn.init.constant_(self.fc_end.bias, 2.0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.backbone(standardise(x)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fc_end(torch.abs(self.embed(a) - self.embed(b))).squeeze(1)


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat((x, out), 1)


class AbnormalityClassifier(nn.Module):
    """DenseNet-BC: stem, four dense blocks with halving transitions, 14 logits."""

    def __init__(self, growth: int = 12, blocks: tuple[int, ...] = (4, 8, 12, 8), n_labels: int = len(LABELS)):
        super().__init__()
        c = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(1, c, 3, stride=2, padding=1, bias=False)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(standardise(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))
