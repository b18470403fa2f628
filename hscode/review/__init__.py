"""The review loop: reviewers confirm or correct codes; their decisions win."""
