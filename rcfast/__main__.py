from rcfast._exit import exit_cli
from rcfast.weekly import main

exit_cli(main())
