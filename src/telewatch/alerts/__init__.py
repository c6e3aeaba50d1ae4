"""Alerting: rules, messages, channels and a durable outbox.

Detection hands :class:`~telewatch.alerts.model.AlertCandidate` values to
:func:`telewatch.services.alerting.submit_alerts`; :func:`telewatch.services.alerting.deliver_outbox`
sends what is due. See ``docs/alerting.md``.
"""

from telewatch.alerts.model import AlertCandidate, DeliveryReport, SubmitReport

__all__ = ["AlertCandidate", "DeliveryReport", "SubmitReport"]
