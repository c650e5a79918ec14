"""A code location whose import fails, as a typo in real code would."""

raise ImportError("fixture location 'broken' fails to import on purpose")
