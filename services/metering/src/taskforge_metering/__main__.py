import os
import sys

import uvloop

from taskforge_common.logging import configure_logging
from taskforge_common.workers import run_workers
from taskforge_metering.bootstrap import main
from taskforge_metering.config import WORKERS_VARIABLE, MeteringSettings

settings = MeteringSettings.from_env()
if settings.workers > 1:
    configure_logging(settings.telemetry.service_name, settings.telemetry.log_level)
    worker = [sys.executable, "-m", "taskforge_metering"]
    sys.exit(run_workers([worker] * settings.workers, {**os.environ, WORKERS_VARIABLE: "1"}))
uvloop.run(main())
