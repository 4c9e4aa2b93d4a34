"""HTTP: app factory, auth and tenancy, Offer Library routes, decisioning route, errors."""
