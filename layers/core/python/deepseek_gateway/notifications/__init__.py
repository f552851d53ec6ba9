"""The notification service: events from the notifications queue to each tenant's webhook, email and SMS.

    events.py    the envelope every producer sends (and the older budget.threshold shape)
    service.py   tenant lookup, subscriptions, one delivery per channel, the delivery ledger
    consumer.py  one SQS message: parse, time guard, retry backoff through the queue
    webhook.py   Standard Webhooks signed POSTs through ssrf.py's pinned transport
    aws.py       email through SES and SMS through SNS, rendered by render.py
    runtime.py   settings from the environment and the process-wide consumer, built on first use
"""
