# The ltv binary as a container: one image for every job of the pipeline (the nightly run,
# per-range recomputes, the demo). See README, "Beyond one machine".
#
#   docker build -t ltv .
#   docker run --rm -e LTV_MYSQL_URL -e AWS_REGION ltv --lake s3://bucket/lake run
#
# Build stage: the toolchain the repository pins (rust-version in Cargo.toml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY schemas ./schemas
COPY pipelines ./pipelines
COPY benches ./benches
COPY tests ./tests
COPY fixtures ./fixtures
RUN cargo build --release --locked --bin ltv

# Run stage: the binary, CA roots for the sources' HTTPS APIs, and the pipeline configs.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /work ltv
COPY --from=build /src/target/release/ltv /usr/local/bin/ltv
COPY pipelines /etc/ltv/pipelines
WORKDIR /work
USER ltv
# Pipeline and lake come from the job (env or flags); secrets only as environment variables
# the pipeline names (e.g. LTV_MYSQL_URL, META_ACCESS_TOKEN), never baked into the image.
ENV LTV_PIPELINE=/etc/ltv/pipelines/demo.toml \
    LTV_CACHE_DIR=/tmp/ltv-cache
ENTRYPOINT ["ltv"]
CMD ["--help"]
