# Builds hearth-server and runs it on a slim Debian. Used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hearth-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hearth --create-home hearth
COPY --from=build /src/target/release/hearth-server /usr/local/bin/hearth-server
USER hearth
WORKDIR /var/lib/hearth
ENV HEARTH_LISTEN=0.0.0.0:8080 \
    HEARTH_DATA_DIR=/var/lib/hearth/data
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hearth-server"]
