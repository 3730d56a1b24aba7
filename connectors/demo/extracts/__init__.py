"""One module per extract; each ``build`` returns the file's bytes and its summary."""
