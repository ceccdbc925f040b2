"""Media: probing and model limits, storage, signed links and the /media endpoint."""
