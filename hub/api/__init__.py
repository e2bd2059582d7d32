"""HTTP endpoints, one module per area. Each module exposes `add_routes(app)`."""
