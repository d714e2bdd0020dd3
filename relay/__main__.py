import sys

from channel_relay.cli import main

sys.exit(main())
