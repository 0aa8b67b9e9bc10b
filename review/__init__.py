"""The review page: the cutout team's queue of garments that need a person, their approvals
and corrections (``cutout review serve``; users from ``cutout users add``)."""
