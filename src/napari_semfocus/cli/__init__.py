"""The ``semfocus`` command line: :mod:`.main` builds the parser; one module per command group
calls the jobs (:mod:`napari_semfocus.jobs`) and the core, as the widgets do."""
