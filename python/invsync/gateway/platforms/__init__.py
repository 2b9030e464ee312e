"""One profile per marketplace, each behind the `Profile` protocol of `base`."""
