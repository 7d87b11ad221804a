"""The napari face of napari-semfocus: dock widgets (Qt). Thin: settings in, core call on a worker
thread, results onto layers. Modules are imported by napari through ``napari.yaml``; nothing is
imported here so that opening the plugin menu stays fast."""
