"""Site-wide desired values for the lab (plain data for now; a later change replaces this with one
validated site model)."""

zone = "corp.example"
vip = "10.0.0.28"
cas_array_name = "outlook"
cas_array_fqdn = "outlook.corp.example"
asa_object_names = ["EXCH-SMTP", "EXCH-HTTPS"]
exchange_rpc_port = 60000
exchange_ab_port = 60001
