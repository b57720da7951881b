# syntax=docker/dockerfile:1
# game-host with the demo modules, profile prod (config/prod.toml).
#
#   make docker                      # docker build -t game-host .  (needs BuildKit, Docker >= 23)
#   docker run -d --name game -p 8000:8000 --stop-timeout 40 \
#       -v game-plugins:/srv/game-host/plugins -v game-data:/srv/game-host/data \
#       -v game-log:/srv/game-host/log game-host
#   curl localhost:8000/health       # {"ret":0,"status":"ok"}
#
# - Clients: port 8000 (server.listen). The admin API (modules, reload, rollback, /metrics)
#   stays on 127.0.0.1:8001 inside the container and is not exposed. To reach it from outside,
#   set GAME_HOST_ADMIN_TOKEN and GAME_HOST_ADMIN_LISTEN=0.0.0.0:8001 and publish 8001 on a
#   private address only.
# - Volumes: plugins, data (SQLite database, the loader's copies) and log, owned by the user
#   game (uid 10001). A named volume starts with the demo modules; a bind-mounted folder must be
#   writable by uid 10001 (data, log) and readable (plugins).
# - Ship a module update into the running container: put the library into the plugins volume
#   under a hidden name, then rename it (the host swaps it in; see README):
#       docker cp libmall.so game:/srv/game-host/plugins/.libmall.so.tmp
#       docker exec game mv /srv/game-host/plugins/.libmall.so.tmp /srv/game-host/plugins/libmall.so
#   `docker kill -s HUP game` rescans the plugins directory. A module's data tables go the same
#   way into plugins/<module>.tables/ (docs/modules.md, "Data tables").
# - Stop: SIGTERM drains for up to server.shutdown_grace_secs (30 in prod); give docker stop
#   more than that (--stop-timeout 40, compose's stop_grace_period: 40s).
# - Upgrade the host itself by replacing the container. SIGUSR2 (re-exec into a successor) is
#   for systemd (config/deploy/systemd/): here the host is PID 1, and the container ends when
#   the first process exits.

# The build, with the toolchain the workspace is developed and tested with (its locked
# dependencies need a newer rustc than the workspace's declared rust-version), through the
# Makefile's own target: `make dist` = `cargo build --release --locked` of the host and the
# demo modules, staged in /out.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    make dist DIST_DIR=/out

# The runtime: glibc and libgcc_s are all the host needs (SQLite is built in); no packages.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 game \
    && useradd --system --no-log-init --uid 10001 --gid game --no-create-home \
        --home-dir /srv/game-host --shell /usr/sbin/nologin game \
    && install -d -o game -g game -m 0755 /srv/game-host \
        /srv/game-host/plugins /srv/game-host/data /srv/game-host/log
COPY --from=build /out/bin/game-host /usr/local/bin/game-host
COPY --from=build /out/config/ /etc/game-host/
COPY --from=build --chown=game:game /out/plugins/ /srv/game-host/plugins/
VOLUME ["/srv/game-host/plugins", "/srv/game-host/data", "/srv/game-host/log"]
USER 10001:10001
WORKDIR /srv/game-host
# The prod profile loads only signed modules (config/prod.toml, [trust]; README, "Signed
# modules"), and the demo modules here are not signed. To require signatures, mount your
# public key read-only at /srv/game-host/keys/modules.pub (owned by root or uid 10001, not
# writable by others), ship each library with its .sig first, and run with
# -e GAME_HOST_TRUST_REQUIRE_SIGNATURE=true.
ENV GAME_HOST_TRUST_REQUIRE_SIGNATURE=false
EXPOSE 8000
STOPSIGNAL SIGTERM
# GET /health through bash's /dev/tcp (no curl in the image): 200 when serving, 503 while
# shutting down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/game-host"]
CMD ["serve", "--profile", "prod", "--config-dir", "/etc/game-host"]
