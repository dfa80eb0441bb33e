from rcfast.weekly import main

raise SystemExit(main())
