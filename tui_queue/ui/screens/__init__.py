"""Modal screens: help, and the dialogs that ask before acting (kill, restart, settings...)."""
