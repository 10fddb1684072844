"""Placeholder connector; the full implementation follows."""

from roles.api import ApiConnector


class DnsConnector(ApiConnector):
    @staticmethod
    def make_names_data(name=None):
        yield f"@exha-dns/{name}", {}, []
