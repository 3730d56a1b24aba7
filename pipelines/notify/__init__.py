"""Notifications to dataset owners: failed blocking checks, failed runs and stale datasets.

`sensor.quality_notifications` is the Dagster sensor. The decision logic lives in plain
modules so it can be tested without Dagster:

- settings.py   where to send, read from the environment at call time
- incidents.py  observations → incidents opened / still open / resolved (the cursor diff)
- evidence.py   counts and file names taken from check metadata, never data values
- messages.py   Danish and Norwegian texts, the webhook payload and the e-mail
- senders.py    webhook (httpx) and SMTP delivery with an outbox that survives failures
- cursor.py     the sensor cursor (JSON): open incidents, seen runs, undelivered messages
- observe.py    reads the Dagster instance, the asset graph and the home's freshness

Environment variables (all optional; with none set, incidents are recorded, nothing is sent):

    KOMMUNELAKE_NOTIFY_WEBHOOK_URL   POST one JSON object per message here
    KOMMUNELAKE_SMTP_HOST            send e-mail to the dataset's `contact` through this host
    KOMMUNELAKE_SMTP_PORT            default 25
    KOMMUNELAKE_SMTP_FROM            default kommunelake@localhost
    KOMMUNELAKE_SMTP_USER            log in with this user ...
    KOMMUNELAKE_SMTP_PASSWORD        ... and password
    KOMMUNELAKE_SMTP_STARTTLS        1/true/yes: upgrade the connection with STARTTLS first
    KOMMUNELAKE_NOTIFY_LANGUAGE      da (default) or no
    KOMMUNELAKE_UI_URL               Dagster UI for links, default http://127.0.0.1:3000
"""
