"""Helpers shared by the widget tests: the user's layers before and after a widget ran."""

from __future__ import annotations

import numpy as np


def layer_snapshot(viewer) -> dict:
    """A copy of every layer's data and metadata, by name."""
    return {layer.name: (np.array(layer.data, copy=True), dict(layer.metadata))
            for layer in viewer.layers}


def assert_layers_unchanged(viewer, before: dict, absent_keys=()) -> None:
    """Same layers, same data, same metadata keys (and none of ``absent_keys``) as ``before``."""
    assert [layer.name for layer in viewer.layers] == list(before)
    for layer in viewer.layers:
        data, meta = before[layer.name]
        np.testing.assert_array_equal(layer.data, data)
        assert not set(absent_keys) & layer.metadata.keys()
        assert layer.metadata.keys() == meta.keys()
