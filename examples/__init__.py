"""Runnable examples; the web-app recipes of docs/apps.md are these files, tested as they are."""
