"""napari-semfocus: focus scores for SEM images (per image, per slice and per tile).

Importing the package is cheap: ``FocusScorer`` (and with it torch) is imported when first used.
The layout: docs/architecture.md.
"""

__version__ = "0.1.0"

__all__ = ["FocusScorer", "SemFocusError", "__version__"]


def __getattr__(name):
    if name == "FocusScorer":
        from .scoring.scorer import FocusScorer  # lazily: the public API stays cheap to import

        return FocusScorer
    if name == "SemFocusError":
        from .errors import SemFocusError  # lazily, as FocusScorer

        return SemFocusError
    raise AttributeError(f"module 'napari_semfocus' has no attribute {name!r}")
