"""Open napari with the napari-semfocus widgets docked and the sample SEM data loaded."""

import napari


def main():
    viewer = napari.Viewer(title="napari-semfocus")
    for key in ("sem_image", "half_focused", "focus_series"):
        viewer.open_sample("napari-semfocus", key)
    viewer.window.add_plugin_dock_widget("napari-semfocus", "Focus map")
    viewer.window.add_plugin_dock_widget("napari-semfocus", "Score focus")
    # the other two as tabs beside Score focus
    viewer.window.add_plugin_dock_widget("napari-semfocus", "Acceptance gate", tabify=True)
    viewer.window.add_plugin_dock_widget("napari-semfocus", "Fine-tune", tabify=True)
    napari.run()


if __name__ == "__main__":
    main()
