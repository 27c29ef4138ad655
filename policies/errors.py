"""The one error policies/ raises on purpose: a policy file that cannot be used.

Pure like the rest of policies/: it knows nothing of the service. ``app.errors`` names
this very class in its error tree, so the service and its callers catch it as it is.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """The policy file is invalid; the message names the file, key and reason."""
