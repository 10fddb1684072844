"""Exchange 2010 Client Access settings over WinRM: the CAS array, each mailbox database's RPC Client
Access server, and the static RPC ports a load balancer needs."""
