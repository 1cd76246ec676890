import sys

from ganforge.launch import main

sys.exit(main())
