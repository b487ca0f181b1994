"""Command-line entry points. Each parses flags and calls the library; nothing more."""
