import sys

from amazonei_setup.cli import main

sys.exit(main())
