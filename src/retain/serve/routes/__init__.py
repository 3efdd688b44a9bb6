"""The routes, one module per concern: predictions, labels, versions and updates, operations."""
