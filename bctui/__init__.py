"""bctui: the BlueConic ⇄ Braze connection in a terminal. Importing it never imports Textual."""

__version__ = "0.1.0"
