"""packflow worker: runs an InferenceBackend as a Kafka streaming service."""
