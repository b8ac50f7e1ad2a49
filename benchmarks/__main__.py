"""``python -m benchmarks NAME [options]`` (a suite, a program or ``readme``); see benchmarks/README.md."""

import sys

from locallearn.bench.main import main

sys.exit(main())
