import uvloop

from taskforge_subscriptions.bootstrap import main

uvloop.run(main())
