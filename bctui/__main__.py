"""`python -m bctui`."""

from bctui.cli import main

raise SystemExit(main())
