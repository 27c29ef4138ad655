"""One-click actions: the pages behind a nudge's ``actions`` URLs (GET shows, POST acts)."""
