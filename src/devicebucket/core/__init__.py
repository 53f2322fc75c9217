"""The core: errors, the rules (ids, values, operations, schemas, masking, limits), the
write planner, the store contract, crypto and tokens. Imports nothing above it."""
