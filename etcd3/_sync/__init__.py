"""The threaded gRPC driver: transport, engines and background threads."""
