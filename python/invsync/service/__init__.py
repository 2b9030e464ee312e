"""The invsync service: the engine on NATS JetStream, one module per job.

`invsync.service.app.run_service(config)` runs it in-process (the demo and the
load test do); `invsync serve` wraps it with signal handling.
"""
