# game-host with the demo modules, profile prod.
#   docker build -t game-host .
#   docker run -p 8000:8000 -v game-data:/srv/game-host/data game-host
# Ship a module update by copying its .so into /srv/game-host/plugins (a volume in production).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --locked

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /srv/game-host --shell /usr/sbin/nologin game \
    && mkdir -p /srv/game-host/plugins /srv/game-host/data /srv/game-host/log /etc/game-host \
    && chown -R game:game /srv/game-host/data /srv/game-host/log
COPY --from=build /src/target/release/game-host /usr/local/bin/game-host
COPY --from=build /src/target/release/libactivity.so /src/target/release/libmall.so /src/target/release/libplayer.so /srv/game-host/plugins/
COPY config/ /etc/game-host/
USER 10001:10001
WORKDIR /srv/game-host
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/game-host"]
CMD ["serve", "--profile", "prod", "--config-dir", "/etc/game-host"]
