"""Widgets shared by the screens: the paged table, the section bar, connection health text."""
