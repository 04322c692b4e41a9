"""Third-party OCPP peers (Node.js) that the tests drive; see rpc_peer.py."""
