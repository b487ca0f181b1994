"""gin handling: reading gin text, parsing it with gin, registering what it names, judging it.

One module per concept (docs/architecture.md lists them). Nothing here builds a run; the layers above
hand a parse result down instead of reading gin files again.
"""
