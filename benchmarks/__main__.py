"""``python -m benchmarks SUITE [--seeds N] [--epochs E] [--out DIR]``; see benchmarks/README.md."""

import sys

from locallearn.bench.main import main

sys.exit(main())
