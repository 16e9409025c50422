"""Registry domain logic: pure Python (no gRPC, no SQL), time and policy passed in."""
