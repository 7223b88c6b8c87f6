"""Notifications: the pull feed, webhook subscriptions and their signed deliveries, fed by every
context's outbox events.

How a context makes an event notifiable
---------------------------------------
Emit the event as usual, in the transaction of the state change, and put a ``"notification"``
object in its payload::

    uow.emit("customs.declaration_released", "declaration", declaration_id, {
        "number": "500020261000000123",            # any data of the event, sent to webhooks as "data"
        "notification": {
            "code": "declaration.released",         # required; see model.NOTIFICATION_CODES
            "message": "Declaration 500020261000000123 was released.",   # optional: default template
            "subject_type": "declaration",          # optional: defaults to the event's aggregate_type
            "subject_id": declaration_id,           # optional: defaults to the event's aggregate_id
            "audiences": [broker_enterprise_id],    # optional: enterprises told besides the owner
        },
    }, owner_enterprise_id=trader_enterprise_id)

The owner enterprise is the main audience; ``audiences`` adds others (the broker who lodged, a
carrier). Events without a ``"notification"`` key are not notifications. When the worker relays the
committed event, this context writes one notification per audience enterprise (carrying the event's
``feed_seq``, the position in commit order the pull feed pages by) and queues one signed webhook
delivery per matching active subscription of those enterprises.

A broker's pull feed shows its principals' notifications too; its webhooks receive only those
events that name the broker as an audience, so the context that knows the declarant should list it.
"""
