# CPU image serving i2i models: docker build -t i2i . && see the README's "Deploy" section.
FROM python:3.11-slim

# PyTorch's CPU wheels (no CUDA libraries: about 10x smaller than the default build)
ARG TORCH="torch==2.14.1 torchvision==0.29.1"
RUN pip install --no-cache-dir $TORCH --index-url https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[serve,storage]" && useradd --create-home i2i
USER i2i

EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# models are given at run time: docker run ... i2i --model maps=/models/maps (or s3://...)
ENTRYPOINT ["i2i", "serve", "--host", "0.0.0.0", "--port", "8000"]
