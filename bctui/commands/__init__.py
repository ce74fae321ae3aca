"""Handlers of the headless `bctui` commands, grouped by area."""
