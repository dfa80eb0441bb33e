"""``python -m rcfast.weekly``."""

from rcfast._cli import exit_cli
from rcfast.weekly.cli import main

exit_cli(main())
