#!/bin/sh
# Starts mitmdump with the policy addon. EGRESS_CA (the engine's CA, key and certificate) is
# given only to proxies of sandboxes with domain secrets, which decrypt those domains' requests;
# EGRESS_UPSTREAM_CA replaces the public CAs for the servers they decrypt (tests, private CAs).
set -eu
umask 077
mkdir -p /tmp/mitmproxy
set -- --mode regular --listen-port 8080 --set confdir=/tmp/mitmproxy --set rawtcp=false \
    --set http3=false --set connection_strategy=lazy --set flow_detail=0 \
    --set 'allow_hosts=^$' -s /opt/egress/egress_addon.py
if [ -n "${EGRESS_CA:-}" ]; then
    printf '%s\n' "$EGRESS_CA" > /tmp/mitmproxy/mitmproxy-ca.pem
fi
if [ -n "${EGRESS_UPSTREAM_CA:-}" ]; then
    printf '%s\n' "$EGRESS_UPSTREAM_CA" > /tmp/upstream-ca.pem
    set -- "$@" --set ssl_verify_upstream_trusted_ca=/tmp/upstream-ca.pem
fi
unset EGRESS_CA EGRESS_UPSTREAM_CA
exec mitmdump "$@"
