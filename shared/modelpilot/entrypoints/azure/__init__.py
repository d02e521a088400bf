"""Azure payloads → commands: Event Grid envelopes (both schemas), Blob uploads, Azure ML events,
timers and the operator HTTP API."""
