"""The Textual front end of bctui. Only `bctui.cli` imports it, lazily, when the UI is opened."""
