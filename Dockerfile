# The platform's own image (compose.yaml). Jobs run in labyard/runner (see runner/).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . /src
RUN pip install . && rm -rf /src
RUN useradd --create-home --uid 1000 labyard && mkdir -p /data && chown labyard /data
USER labyard
ENV LABYARD_DATA_DIR=/data LABYARD_HOST=0.0.0.0
EXPOSE 8000
CMD ["labyard", "serve"]
