"""The balancer VMs' desired state (deploys/balancer.py): network, resolvers, VIPs and virtual services.

Per-VM values (vm_name, vm_address, balancer_hostname) are in the inventory; the site's VIP is `vip` in all.py.
"""

balancer_prefix_len = 8
balancer_gateway = "10.0.0.1"
balancer_nameservers = ["10.0.0.10", "10.0.0.11"]
balancer_search = ["corp.example"]
balancer_domain = "corp.example"
#: the Exchange servers every service balances unless it names its own
balancer_real_servers = ["10.0.0.23", "10.0.0.24"]
#: health checks of the lab: a server is out after 2 failed checks 2 s apart (templates use 10 s x 3)
_lab_health = {"interval": 2.0, "timeout": 1.5, "fall": 2, "rise": 2}
balancer_services = [
    {"name": "smtp", "template": "exchange2013-smtp", "health": _lab_health},
    {"name": "https", "template": "exchange2013-https", "health": _lab_health},
    {"name": "rpc", "template": "exchange2010-mapi-static", "health": _lab_health},
]
