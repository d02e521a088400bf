"""The stack as deployed: template.yaml on moto under each function's own role, the Bicep's wiring on Azurite."""
