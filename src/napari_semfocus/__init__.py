"""napari-semfocus: focus scores for SEM images (per image, per slice and per tile).

Importing the package is cheap: torch is only imported when a model is used.
"""

__version__ = "0.1.0"

__all__ = ["FocusScorer", "SemFocusError", "__version__"]


def __getattr__(name):
    if name == "FocusScorer":
        from .scoring.scorer import FocusScorer

        return FocusScorer
    if name == "SemFocusError":
        from .errors import SemFocusError

        return SemFocusError
    raise AttributeError(f"module 'napari_semfocus' has no attribute {name!r}")
