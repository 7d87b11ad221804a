"""FocusNet: a torchvision CNN trunk, its pooled features concatenated with the encoded
magnification, then three fully connected layers with ReLU -> a score in [0, 10]
(Yang et al. 2020, Microsc. Microanal. 26 S2).

The trunk, the pooling and the head are separate attributes so that a focus map can run the
trunk once over a whole frame and pool its feature map per tile. A model may carry a second head
of the same shape, the *map head* (:attr:`FocusNet.map_head`): the head distilled to score such
region-pooled features as the model scores the tile's crop (see
:mod:`napari_semfocus.scoring.focus_map` for why the plain head cannot). It is tied to the weights
it was distilled from by :func:`scoring_fingerprint`.
No weights are ever downloaded: every backbone is built with ``weights=None``.
"""

from __future__ import annotations

import copy
import hashlib

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
        self.head = make_head(in_dim)
        # distilled head for region-pooled features of a whole frame (focus maps); None: none
        self.map_head: nn.Sequential | None = None
        self.map_head_of = ""  # scoring_fingerprint of the weights the map head was distilled for
        self.map_head_info: dict = {}  # how it was distilled (stored in the checkpoint's metadata)

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

    def score_features(self, feats: torch.Tensor, m: torch.Tensor | None,
                       head: nn.Module | None = None) -> torch.Tensor:
        """Head on pooled features (B, C) and encoded magnifications (B,) -> scores (B,).
        ``head``: another head of the same shape (the map head); default: :attr:`head`.
        The head (0.2 M multiply-adds) always runs in float32, also under a bf16/fp16 autocast,
        so scores are not rounded to the half-precision grid (~0.03 points near 10)."""
        head = self.head if head is None else head
        if feats.device.type not in ("cpu", "cuda"):
            return self._head_scores(feats.float(), m, head)
        with torch.autocast(feats.device.type, enabled=False):
            return self._head_scores(feats.float(), m, head)

    def _head_scores(self, feats: torch.Tensor, m: torch.Tensor | None, head: nn.Module
                     ) -> torch.Tensor:
        if self.use_magnification:
            if m is None:
                raise SemFocusError("this model needs a magnification for every image.")
            feats = torch.cat([feats, m.to(feats).reshape(-1, 1)], dim=1)
        m_ = self.output_margin
        score = (SCORE_MAX + 2 * m_) * torch.sigmoid(head(feats).squeeze(1)) - m_
        return score if self.training or not m_ else score.clamp(0.0, SCORE_MAX)

    def map_scores(self, feats: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        """The map head on region-pooled features (B, C) -> scores (B,) (needs a map head)."""
        if self.map_head is None:
            raise SemFocusError("this model has no map head (see FocusNet.map_head).")
        return self.score_features(feats, m, self.map_head)

    def attach_map_head(self) -> nn.Sequential:
        """A new map head, a copy of :attr:`head` (the start of its distillation); returned."""
        self.map_head = copy.deepcopy(self.head)
        self.map_head_of, self.map_head_info = "", {}
        return self.map_head

    def drop_map_head(self) -> None:
        """Remove the map head (a model whose trunk or head changes: fine-tuning)."""
        self.map_head = None
        self.map_head_of, self.map_head_info = "", {}

    def forward(self, x: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        return self.score_features(self.features(x), m)


def make_head(in_dim: int) -> nn.Sequential:
    """The head: three fully connected layers with ReLU, ``in_dim`` -> 1."""
    h1, h2 = HEAD_HIDDEN
    return nn.Sequential(
        nn.Linear(in_dim, h1), nn.ReLU(inplace=True),
        nn.Linear(h1, h2), nn.ReLU(inplace=True),
        nn.Linear(h2, 1),
    )


MAP_HEAD_PREFIX = "map_head."


def scoring_fingerprint(state: dict) -> str:
    """SHA-256 of the weights that make a score (every floating-point tensor but the map
    head's), each rounded to float16 first, so a float32 model and its float16 copy (the
    shipped file) have one fingerprint. A map head is valid only for this fingerprint."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        if k.startswith(MAP_HEAD_PREFIX) or not v.is_floating_point():
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().to(torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
