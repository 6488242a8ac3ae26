"""Console tables and report writers shared by the commands."""
