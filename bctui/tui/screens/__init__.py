"""One screen per module; a screen's stylesheet sits beside it."""
