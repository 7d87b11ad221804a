"""Open napari with the napari-semfocus widgets docked and the sample SEM data loaded."""

import napari


def main():
    viewer = napari.Viewer(title="napari-semfocus")
    for key in ("sem_image", "half_focused", "focus_series"):
        viewer.open_sample("napari-semfocus", key)
    score_dock, _ = viewer.window.add_plugin_dock_widget("napari-semfocus", "Score focus")
    for name in ("Focus map", "Acceptance gate", "Fine-tune"):  # as tabs beside Score focus
        viewer.window.add_plugin_dock_widget("napari-semfocus", name, tabify=True)
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, score_dock.raise_)  # once the window is shown: Score focus in front
    napari.run()


if __name__ == "__main__":
    main()
