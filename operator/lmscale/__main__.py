from lmscale.cli import main

raise SystemExit(main())
