"""A stand-in for one Exchange 2013 CAS/Hub Transport server: SMTP, HTTPS virtual directories and
RPC ports answering with the server's identity, all in one asyncio process inside its namespace."""
