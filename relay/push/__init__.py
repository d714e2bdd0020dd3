"""Push notifications: device registrations, channel subscriptions and publishing.

Nothing leaves the machine: a notification that Ably would hand to APNs, FCM or a browser's
push service is recorded per device instead (readable through `GET /push/notifications` and
the pytest plugin), and one for an `ablyChannel` recipient is published on that channel as
Ably does, as a `__ably_push__` message.
"""
