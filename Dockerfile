# One image per service: docker build --build-arg SERVICE=metering -t taskforge/metering .
FROM python:3.11-slim AS build
ARG SERVICE=metering
WORKDIR /src
COPY requirements.txt ./
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
COPY libs/common ./libs/common
COPY services/${SERVICE} ./services/${SERVICE}
RUN /venv/bin/pip install --no-cache-dir --no-deps ./libs/common ./services/${SERVICE}

FROM python:3.11-slim
ARG SERVICE=metering
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH SERVICE=${SERVICE}
COPY --from=build /venv /venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin taskforge
USER 10001
# Migrations ship inside the package: `python -m taskforge_common.db.migrate ${SERVICE}`.
ENTRYPOINT ["sh", "-c", "exec python -m taskforge_${SERVICE}"]
