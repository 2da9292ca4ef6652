#!/usr/bin/env bash
# Install (idempotently) Debian's nginx for the cluster tests and print the path of its binary on
# stdout. Nothing is started: the tests run their own nginx process, with their own config, prefix
# and pid file, on free 127.0.0.1 ports. `nginx-light` is enough (upstream, proxy, keepalive);
# the full `nginx` package is the fallback.
set -euo pipefail

find_nginx() {
  if [ -n "${PALLET_TEST_NGINX:-}" ] && [ -x "$PALLET_TEST_NGINX" ]; then
    echo "$PALLET_TEST_NGINX"
    return
  fi
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

NGINX="$(find_nginx)"
if [ -z "$NGINX" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing nginx..." >&2
    # policy-rc.d keeps the package's postinst from starting the system service.
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >&2 \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
    NGINX="$(find_nginx)"
  fi
fi
[ -n "$NGINX" ] && [ -x "$NGINX" ] || { echo "nginx not found and could not be installed" >&2; exit 1; }
echo "$NGINX"
