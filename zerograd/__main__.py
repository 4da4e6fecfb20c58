"""`python -m zerograd` runs the `zerograd` command."""

import sys

from .cli import main

sys.exit(main())
