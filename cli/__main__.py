"""``python -m mmla.cli`` (and ``accelerate launch -m mmla.cli``): the ``mmla`` command."""

import sys

from mmla.cli.main import main

sys.exit(main())
