"""One module per stage: a plain typed function that writes one artifact, plus its record."""
