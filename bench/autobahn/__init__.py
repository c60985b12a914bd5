"""WebSocket conformance: Autobahn|Testsuite against the gateway's transport (see README)."""
