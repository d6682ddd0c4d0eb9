import sys

from se_edge.cli import main

sys.exit(main())
