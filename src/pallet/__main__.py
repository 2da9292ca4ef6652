from pallet.cli import main

raise SystemExit(main())
