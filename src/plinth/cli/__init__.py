"""The command line: thin click commands over the Python API, one module per command group.

May import every plinth layer, but only inside command functions (imports are lazy so that
``plinth --help`` stays fast). Logic lives in the library, not here.
"""
