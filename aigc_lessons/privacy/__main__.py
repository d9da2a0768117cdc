import sys

from .studies import main

sys.exit(main())
