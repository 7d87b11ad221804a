"""Where each slice of a through-focus series was taken: its focus position z.

In order of preference (docs/through-focus.md):

1. the metadata: a per-slice list in a stack's metadata (``focus_um``, ``defocus_um``, ``z_um``:
   micrometres; ``working_distance_mm``: a list, in millimetres), or, for a set of files, the
   working distance of each file (``working_distance_mm``, as the FEI/Thermo, Zeiss, Tescan, JEOL
   and Hitachi readers give it), reported in micrometres;
2. ``step_um``: slice i at z = i * step_um (the first slice at 0);
3. the slice index.

A set of files whose working distances are all the same carries no focus information in them,
so the step or the index is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemFocusError

PER_SLICE_UM_KEYS = ("focus_um", "defocus_um", "z_um")
WD_KEY = "working_distance_mm"


@dataclass(frozen=True)
class FocusPositions:
    """z per slice, its unit ("um" or "slice") and where it came from (for the record)."""

    z: tuple
    unit: str = "slice"
    source: str = "slice index"

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.z, dtype=np.float64)


def _per_slice(metadata: dict, n: int) -> FocusPositions | None:
    for key in PER_SLICE_UM_KEYS + (WD_KEY,):
        values = (metadata or {}).get(key)
        if isinstance(values, (list, tuple)) and len(values) == n and n > 1:
            try:
                z = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if np.all(np.isfinite(z)) and np.unique(z).size == n:
                scale = 1000.0 if key == WD_KEY else 1.0
                return FocusPositions(tuple(float(v) * scale for v in z), "um",
                                      f"metadata {key}")
    return None


def stack_positions(metadata: dict | None, n: int, step_um: float | None = None
                    ) -> FocusPositions:
    """z of the ``n`` slices of one stack: its metadata's per-slice list, else ``step_um``,
    else the index."""
    found = _per_slice(metadata or {}, n)
    return found if found is not None else _fallback(n, step_um)


def file_positions(metadatas, step_um: float | None = None) -> FocusPositions:
    """z of a set of files, one frame each (in the order given): each file's working distance
    when every file has one and they differ, else ``step_um``, else the index."""
    wds = [(m or {}).get(WD_KEY) for m in metadatas]
    n = len(wds)
    if n > 1 and all(isinstance(w, (int, float)) and np.isfinite(w) for w in wds) \
            and np.unique(wds).size == n:
        return FocusPositions(tuple(float(w) * 1000.0 for w in wds), "um",
                              f"metadata {WD_KEY} of each file")
    return _fallback(n, step_um)


def _fallback(n: int, step_um: float | None) -> FocusPositions:
    if step_um is None:
        return FocusPositions(tuple(float(i) for i in range(n)))
    if not (np.isfinite(step_um) and step_um > 0):
        raise SemFocusError(f"--step-um {step_um:g} is not a positive number of micrometres.")
    return FocusPositions(tuple(i * float(step_um) for i in range(n)), "um", "--step-um")
