"""Provider callers: one adapter per upstream API, each importing its SDK only when first called."""
