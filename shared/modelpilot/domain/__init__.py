"""The pure domain: entities, commands, events, gates, audit chain, rollback rules.

Nothing here performs I/O or imports a cloud SDK or numpy.
"""
