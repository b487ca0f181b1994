"""User code that ginlight's shipped configs run; not part of the library."""
