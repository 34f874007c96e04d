"""Snapshots of a policy tree (a directory, the Git index, a revision) and the one Git layer."""
