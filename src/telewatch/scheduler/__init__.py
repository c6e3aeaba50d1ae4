"""Scheduling monitors: the built-in runner (``telewatch run``), one-off ticks (``telewatch check``) and
an Airflow DAG factory (:mod:`telewatch.scheduler.airflow`), all calling the same job,
:func:`telewatch.services.monitor.run_monitor`."""
