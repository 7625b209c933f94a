"""``python -m tinymobile``: the same as the ``tinymobile`` command."""
import sys

from .cli import main

sys.exit(main())
