#!/usr/bin/env python3
"""Load files and folders into Mirador's index: the same as `mirador index`.

python scripts/index_documents.py PATH... [--kind documents|persona] [--index DIR]
"""

import sys

from graph.cli import main

if __name__ == "__main__":
    sys.exit(main(["index", *sys.argv[1:]]))
