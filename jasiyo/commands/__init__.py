"""The `jasiyo` CLI's command groups. Each module is a thin layer over library calls."""
