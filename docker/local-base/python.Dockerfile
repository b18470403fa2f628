# Debian's Python 3.11 (with venv), standing in for python:3.11.7-slim-bookworm where
# Docker Hub cannot be reached. Built by docker/build-local-base.sh.
ARG BASE=hscode-local/debian:bookworm
FROM ${BASE}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv python-is-python3 \
 && update-ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# pip and uv read the system bundle (which now holds this machine's extra CAs)
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
