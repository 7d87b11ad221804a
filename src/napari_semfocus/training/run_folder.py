"""The output folder of a training run (``--out``): ``last.safetensors`` and its optimiser
state (safetensors, no pickles) written after every epoch, ``best.safetensors``, resuming from
them, the temporaries a killed run left, and the check that a folder is free to write into."""

from __future__ import annotations

import json
import math
from pathlib import Path

from safetensors import safe_open

from ..errors import SemFocusError
from ..io.files import atomic_write
from ..scoring.checkpoint import load_checkpoint


def save_optimiser(opt, out_dir: Path, epoch: int, history: list, best: float) -> None:
    """Optimiser state as safetensors (tensors) + JSON in its header; no pickles."""
    from safetensors.torch import save_file  # lazily: torch only where a run is saved or resumed

    state = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in state["state"].items():
        for key, val in st.items():
            name = f"{pid}.{key}"
            if hasattr(val, "detach"):
                tensors[name] = val.detach().cpu().contiguous()
            else:
                scalars[name] = val
    header = {"resume": json.dumps({"epoch": epoch, "history": history, "best": best,
                                    "scalars": scalars, "param_groups": state["param_groups"]})}
    atomic_write(out_dir / "last-optimiser.safetensors",
                 lambda tmp: save_file(tensors, tmp, metadata=header))


def resume_state(model, opt, out_dir: Path, device):
    """Load ``last`` and its optimiser state into ``model`` / ``opt``: (epochs done, history,
    best validation RMSE)."""
    from safetensors.torch import load_file  # lazily: torch only where a run is saved or resumed

    loaded, last_meta = load_checkpoint(out_dir / "last.safetensors")
    model.load_state_dict(loaded.state_dict())
    path = out_dir / "last-optimiser.safetensors"
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["resume"])
    tensors = load_file(str(path), device=str(device))
    state: dict = {}
    for name, val in list(tensors.items()) + list(info["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    best = info["best"] if info["best"] is not None else math.inf
    history = last_meta.get("history")
    if isinstance(history, list) and len(history) < int(info["epoch"]):
        # killed between the two writes: the model is an epoch behind; resume from the model
        best = (last_meta.get("metrics") or {}).get("best_val_rmse")
        return len(history), history, math.inf if best is None else float(best)
    return int(info["epoch"]), list(info["history"]), float(best)


CHECKPOINT_NAMES = ("last.safetensors", "best.safetensors", "last-optimiser.safetensors")


def remove_stale_temporaries(out_dir) -> list[Path]:
    """Delete the hidden temporaries a killed run left in ``out_dir``
    (:func:`~napari_semfocus.io.files.atomic_write` names them ``.NAME.XXXX.tmp``)."""
    removed = []
    for name in CHECKPOINT_NAMES:
        for tmp in Path(out_dir).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def check_out_dir(out_dir, resume: bool, overwrite: bool) -> None:
    """Refuse an ``out_dir`` that is a file, or that holds checkpoints of an earlier run when
    neither ``resume`` nor ``overwrite`` is given."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SemFocusError(f"--out {out_dir} is a file, not a folder.")
    held = [n for n in CHECKPOINT_NAMES if (out_dir / n).exists()]
    if held and not (resume or overwrite):
        raise SemFocusError(f"--out {out_dir} already holds {held[0]} of an earlier run: pass "
                            f"--resume to continue it or --overwrite to replace it.")
