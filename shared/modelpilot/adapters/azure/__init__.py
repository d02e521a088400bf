"""The Azure backend: Blob Storage, Table Storage, Event Grid, Key Vault and Azure Monitor.

The azure SDKs are imported only inside this package. Every adapter takes its
client (or a credential) injected: ``DefaultAzureCredential`` in the cloud, a
connection string read from a named app setting for Azurite.
"""
