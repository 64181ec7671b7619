"""Which series feeds each model channel (rules and scores), and which GTV model (channel configuration) the
study supports."""
