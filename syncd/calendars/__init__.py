"""Calendar sides: `ics_file`, `ics_dir`, `ics_url` (and `caldav` later), one module each."""
