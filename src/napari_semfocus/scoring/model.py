"""FocusNet: a torchvision CNN trunk, its pooled features concatenated with the encoded
magnification, then three fully connected layers with ReLU -> a score in [0, 10]
(Yang et al. 2020, Microsc. Microanal. 26 S2).

The trunk, the pooling and the head are separate attributes so that a focus map can run the
trunk once over a whole frame and pool its feature map per tile.
No weights are ever downloaded: every backbone is built with ``weights=None``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SemFocusError
from ..runtime import triton_import_guarded
from ..scale import SCORE_MAX
from .checkpoint_schema import BACKBONES, check_output_margin

HEAD_HIDDEN = (256, 64)


def build_trunk(backbone: str) -> tuple[nn.Module, int]:
    """Convolutional part of a torchvision classifier (no pooling, no classifier), untrained,
    and the number of channels of its output feature map (stride 32)."""
    if backbone not in BACKBONES:
        raise SemFocusError(f"backbone {backbone!r} is not one of {', '.join(BACKBONES)}.")
    with triton_import_guarded():  # torchvision pulls in triton: beside a system LLVM, safely
        import torchvision.models as tvm  # lazily, inside the guard (napari_semfocus/runtime.py)

    net = getattr(tvm, backbone)(weights=None)
    if backbone.startswith("resnet"):
        trunk = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
        return trunk, net.fc.in_features
    # mobilenet_v3_* and efficientnet_*: .features ends with a conv block; classifier[0] is Linear
    return net.features, _first_linear(net.classifier).in_features


def _first_linear(module: nn.Module) -> nn.Linear:
    return next(m for m in module.modules() if isinstance(m, nn.Linear))


class FocusNet(nn.Module):
    """Score regressor. ``forward(x, m)`` takes (B, 3, H, W) normalised images and (B,) encoded
    magnifications in [0, 1] and returns (B,) scores in [0, 10].

    The head's output z is mapped to ``(10 + 2 * output_margin) * sigmoid(z) - output_margin``:
    with a margin the ends of the scale (0 for noise, 10 for perfect focus) are reached at a
    finite z instead of only asymptotically, which a plain ``10 * sigmoid`` (margin 0, the v1
    model) cannot do, so it under-scores sharp frames. In eval mode scores are clipped to [0, 10];
    in training mode they are not, so the loss keeps its gradient at the ends.
    """

    def __init__(self, backbone: str = "resnet18", use_magnification: bool = True,
                 output_margin: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.use_magnification = bool(use_magnification)
        self.output_margin = check_output_margin(output_margin)
        self.trunk, self.feature_dim = build_trunk(backbone)
        self.pool = nn.AdaptiveAvgPool2d(1)
        in_dim = self.feature_dim + (1 if self.use_magnification else 0)
        h1, h2 = HEAD_HIDDEN
        self.head = nn.Sequential(
            nn.Linear(in_dim, h1), nn.ReLU(inplace=True),
            nn.Linear(h1, h2), nn.ReLU(inplace=True),
            nn.Linear(h2, 1),
        )

    def architecture(self) -> dict:
        return {
            "name": "FocusNet",
            "backbone": self.backbone,
            "use_magnification": self.use_magnification,
            "head_hidden": list(HEAD_HIDDEN),
            "feature_dim": self.feature_dim,
            "output_margin": self.output_margin,
        }

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features (B, feature_dim)."""
        return self.pool(self.trunk(x)).flatten(1)

    def score_features(self, feats: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        """Head on pooled features (B, C) and encoded magnifications (B,) -> scores (B,).
        The head (0.2 M multiply-adds) always runs in float32, also under a bf16/fp16 autocast,
        so scores are not rounded to the half-precision grid (~0.03 points near 10)."""
        if feats.device.type not in ("cpu", "cuda"):
            return self._head_scores(feats.float(), m)
        with torch.autocast(feats.device.type, enabled=False):
            return self._head_scores(feats.float(), m)

    def _head_scores(self, feats: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        if self.use_magnification:
            if m is None:
                raise SemFocusError("this model needs a magnification for every image.")
            feats = torch.cat([feats, m.to(feats).reshape(-1, 1)], dim=1)
        m_ = self.output_margin
        score = (SCORE_MAX + 2 * m_) * torch.sigmoid(self.head(feats).squeeze(1)) - m_
        return score if self.training or not m_ else score.clamp(0.0, SCORE_MAX)

    def forward(self, x: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        return self.score_features(self.features(x), m)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
