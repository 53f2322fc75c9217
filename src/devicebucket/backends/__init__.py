"""The stores: SQLite (embedded), PostgreSQL (many servers) and the HTTP client store,
``open_store`` to pick one from a URL, and ``copy_store`` between them."""
