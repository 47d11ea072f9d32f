"""``python -m medicane_hf.convert`` = ``medicane-hf convert``."""

import sys

from medicane_hf.convert.command import main

sys.exit(main())
