"""Sans-I/O rules: no gRPC, no threads, no clocks read behind the caller's back."""
