"""syncd: a two-way calendar sync daemon between calendars and sales tools."""

__version__ = "0.1.0"
