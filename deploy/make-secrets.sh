#!/bin/sh
# Creates deploy/secrets/: the files docker-compose.yml mounts as secrets (/run/secrets/NAME in the containers).
# Random passwords and API token; the Binance keys from BINANCE_API_KEY / BINANCE_SECRET_KEY if set, else empty
# (demo mode needs none). Existing files are kept: run it again after deleting one to regenerate it.
# The directory is private (0700); the files are 0644 because docker-compose bind-mounts them as they are and
# the services run as uid 10001, not as you.
set -eu
umask 022
DIR=$(dirname "$0")/secrets
mkdir -p "$DIR" && chmod 0700 "$DIR"
rand() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40; }
put() { [ -f "$DIR/$1" ] || { printf '%s\n' "$2" > "$DIR/$1"; echo "created $DIR/$1"; }; }

put api_token "$(rand)"
put postgres_password "$(rand)"
put redis_password "$(rand)"
PG=$(cat "$DIR/postgres_password")
RP=$(cat "$DIR/redis_password")
put database_url "postgresql+asyncpg://roottrading:$PG@postgres:5432/roottrading"
put bus_url "redis://:$RP@redis:6379/0"
put redis.conf "requirepass $RP"
put binance_api_key "${BINANCE_API_KEY:-}"
put binance_secret_key "${BINANCE_SECRET_KEY:-}"
chmod 0644 "$DIR"/*
