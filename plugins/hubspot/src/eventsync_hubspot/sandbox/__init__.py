"""A local HubSpot: the CRM v3 API the plugin talks to, over a real socket on 127.0.0.1.

Its dependencies are the plugin's ``[sandbox]`` extra; ``hooks`` (the ``hubspot_sandbox``
entry point) and ``wiring`` import none of them, so a production install loads them too.
"""
