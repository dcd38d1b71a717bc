"""The cached stages, one module per domain, and the one table of their versions (`versions`). Chapters and the
command line get every result through here."""
