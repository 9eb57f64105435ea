import uvloop

from taskforge_metering.bootstrap import main

uvloop.run(main())
