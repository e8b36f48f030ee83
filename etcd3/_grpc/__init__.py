"""gRPC-level pieces any driver shares: the RPC table and status translation."""
