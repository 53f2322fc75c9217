"""The HTTP contract, shared by the server and the HTTP client store: the route table, the
error table, the JSON shapes and the export format. Imports only the core."""
