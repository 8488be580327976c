def total(invoices):
    """Sum the amounts of paid invoices, in cents."""
    return sum(i.amount_cents for i in invoices if i.paid)


def overdue(invoices, today):
    """Invoices past their due date that are still unpaid."""
    return [i for i in invoices if not i.paid and i.due < today]
