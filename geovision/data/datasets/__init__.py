"""One module per dataset; each registers its classes in geovision.data.registry."""
