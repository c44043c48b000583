"""The Memory feature: a panel in each checkpoint tab (``feature.register``)."""
