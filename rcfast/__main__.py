from rcfast._cli import exit_cli
from rcfast.weekly import main

exit_cli(main())
