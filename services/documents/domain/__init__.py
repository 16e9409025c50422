"""Pure rendering domain of the documents service: no gRPC, no SQL, no environment reads."""
