"""The dashboard's widgets; each module holds one widget (and its small helpers)."""
