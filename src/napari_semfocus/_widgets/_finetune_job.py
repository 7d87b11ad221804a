"""The work behind the Fine-tune widget, as a generator for ``napari.qt.threading`` (no Qt).

:func:`finetune_job` takes a :class:`FineTuneSettings` snapshot (a copy of the annotations, the
annotated frames of open layers, the training settings), runs
:func:`napari_semfocus.finetune.finetune` and yields its typed updates (``Prepared``,
``Evaluated``, ``BatchDone``, ``EpochDone``, ``Finished``) for the widget; Stop sets the cancel
flag, which training checks before each batch. Returns the ``FineTuneResult``.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field

from ..training.data.annotations import AnnotationTable
from ..training.finetune import FineTuneResult, finetune
from ..training.loop import TrainConfig


@dataclass(frozen=True)
class FineTuneSettings:
    """Everything a fine-tuning run needs, read from the widget once before the worker starts."""

    table: AnnotationTable  # a copy: the widget's table stays editable while training runs
    config: TrainConfig
    init: str = "default"  # "default" or a checkpoint path
    val_fraction: float = 0.25
    frames: dict = field(default_factory=dict)  # (layer, slice) -> frame of an open layer


def finetune_job(settings: FineTuneSettings, cancel: threading.Event
                 ) -> Generator[object, None, FineTuneResult]:
    from ..scoring.llvm_guard import guard_triton_import

    guard_triton_import()  # before torch is first imported in the GUI process
    return (yield from finetune(settings.table, settings.config, settings.init,
                                settings.val_fraction, settings.frames,
                                should_stop=cancel.is_set))
