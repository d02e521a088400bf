"""Adapters: one package per backend (local, aws, azure); cloud SDKs are imported only there."""
