"""Calendar sides: `ics_file`, `ics_dir`, `ics_url`, `caldav` (its XML in `dav`), one
module each."""
