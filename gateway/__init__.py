"""pushgate gateway: the Trio server, the store, the API."""
