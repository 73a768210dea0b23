"""The store: tables, migrations and every SQL statement stepgraph runs."""
