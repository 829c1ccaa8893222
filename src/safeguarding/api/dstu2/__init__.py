"""FGM-IS DSTU2 messaging API (the live Spine interface), kept apart from R4."""
