"""``python -m napari_semfocus.cli``: the ``semfocus`` command."""

import sys

from .main import main

sys.exit(main())
