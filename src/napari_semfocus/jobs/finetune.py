"""Fine-tuning on expert annotations (``semfocus train --annotations``, the Fine-tune widget).

:func:`finetune_job` runs :func:`napari_semfocus.training.finetune.finetune` on a
:class:`FineTuneSettings` snapshot and yields its typed updates (``Prepared``, ``Evaluated``,
``BatchDone``, ``EpochDone``, ``Finished``); ``cancel`` is checked by training before each batch.
Returns the ``FineTuneResult``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field

from ..training.data.annotations import AnnotationTable
from ..training.finetune import VAL_FRACTION, FineTuneResult, finetune
from ..training.loop import TrainConfig


@dataclass(frozen=True)
class FineTuneSettings:
    """Everything a fine-tuning run needs, read from the widget or the command line first."""

    table: AnnotationTable  # a copy: the widget's table stays editable while training runs
    config: TrainConfig
    init: str = "default"  # "default" or a checkpoint path
    val_fraction: float = VAL_FRACTION
    frames: dict = field(default_factory=dict)  # (layer, slice) -> frame of an open layer
    out_dir: str | None = None  # where training keeps last/best checkpoints (None: memory only)
    resume: bool = False
    source: str | None = None  # the CSV the annotations came from
    backbone: str = "resnet18"
    use_magnification: bool = True
    output_margin: float | None = None
    keep_parent: bool = True  # the parent stays the result unless an epoch beats it on validation


def finetune_job(settings: FineTuneSettings, cancel: threading.Event | None = None
                 ) -> Generator[object, None, FineTuneResult]:
    s = settings
    stop = cancel.is_set if cancel is not None else (lambda: False)
    return (yield from finetune(s.table, s.config, init=s.init, val_fraction=s.val_fraction,
                                frames=s.frames, out_dir=s.out_dir, resume=s.resume,
                                source=s.source, should_stop=stop, backbone=s.backbone,
                                use_magnification=s.use_magnification,
                                output_margin=s.output_margin, keep_parent=s.keep_parent))
