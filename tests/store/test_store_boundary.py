"""The store package stays free of front-end libraries."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_store_imports_no_textual_and_no_rich() -> None:
    code = (
        "import sys, bctui.store, bctui.store.loader, bctui.store.dump\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
