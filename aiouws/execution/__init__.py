"""Execution: running queued jobs in warm runner processes (or the fast lane).

:mod:`.supervisor` (``QueueSupervisor``) claims jobs into the runner slots of
:mod:`.slots`, started by :mod:`.runnerpool`; :mod:`.jobrun` follows one job to
its recorded outcome; :mod:`.fastlane` and :mod:`.inline` run jobs a kind's
inline lane accepts in the server; :mod:`.leases` is the crash safety (claims,
heartbeat, recovery); :mod:`.queuenews` decides when a claim is worth making;
:mod:`.sidetasks` watches the supervisor's background tasks; :mod:`.reaper`
destroys jobs past their destruction time.
"""
