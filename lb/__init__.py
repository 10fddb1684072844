"""The bundled Exchange load balancer: an asyncio daemon with virtual services, health checks and failover."""
