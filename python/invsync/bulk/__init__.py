"""Bulk input for `invsync publish`: a JSON-lines file of contract events, checked
line by line, packed into NATS-sized messages and stored in the service's stream.
"""
