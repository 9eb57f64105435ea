import asyncio

from taskforge_metering.bootstrap import main

asyncio.run(main())
