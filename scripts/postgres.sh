#!/usr/bin/env bash
# Start (idempotently) a throwaway PostgreSQL cluster on 127.0.0.1 for the test suite and print
# its URL on stdout. `scripts/postgres.sh stop` stops it. PostgreSQL refuses to run as root, so
# as root the cluster belongs to the `postgres` user.
set -euo pipefail
PGPORT="${PALLET_PG_PORT:-54329}"
PGDIR="${PALLET_PG_DIR:-/tmp/pallet-pg-$PGPORT}"
URL="postgresql://pallet@127.0.0.1:$PGPORT/postgres"

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL server..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN="$(find_bin)"
  fi
fi
[ -x "$BIN/initdb" ] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-start}" = stop ]; then
  [ -d "$PGDIR/data" ] && as_owner "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2 || true
  exit 0
fi

if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
  as_owner "$BIN/initdb" -D "$PGDIR/data" -U pallet --auth=trust -E UTF8 >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; exit 1; }
fi
if ! as_owner "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >&2 \
    || { cat "$PGDIR/server.log" >&2; exit 1; }
fi
echo "$URL"
