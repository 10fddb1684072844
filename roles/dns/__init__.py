"""DNS role: A records on an RFC 2136 primary with TSIG, verified on every authoritative server
(`@exha-dns/<server>`)."""
