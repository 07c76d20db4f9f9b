"""The event-platform vocabulary the flows are written against (see docs/flows.md).

An event-platform plugin (Hopin today) exposes these objects and fields through ``pull`` and
``push``; keeping the names in one place lets a second platform plugin map onto them.
"""

EVENT = "event"
REGISTRATION = "registration"
TICKET = "ticket"
MAGIC_LINK = "magicLink"
ATTENDANCE = "attendance"

#: The ticket field that holds the integration code (the part after "=" of its registration URL).
TICKET_CODE = "integrationCode"
#: Magic-link fields.
LINK_URL = "magicLink"
LINK_STATUS = "status"
LINK_TICKET = "ticketId"
LINK_CRM_ID = "registrationId"
LINK_EMAIL = "email"
#: The notification kind announcing a new magic link (its creator marks the write-back itself).
LINK_CREATED = "magicLinkCreated"
#: The registration field naming the magic link it was made from (an accepted invitation).
REGISTRATION_MAGIC_LINK = "magicLinkId"
#: When the event ends.
EVENT_END = "timeEnd"
#: Attendance fields.
ATTENDEE_EMAIL = "email"
