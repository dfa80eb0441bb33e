"""``python -m rcfast.synth``."""

import sys

from rcfast.synth.cli import main

sys.exit(main())
