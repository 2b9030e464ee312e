"""The NATS user the tests talk as, besides the one-per-role users every embedded server has.

It holds the client roles of the data account (producer, connector, observer);
policy reloads go through the `admin` user, in its own account. Kept apart from
the harness so conftest.py needs nothing but the NATS server module.
"""

TEST_CLIENT = "tester"
TEST_USERS = {TEST_CLIENT: ("producer", "connector", "observer")}
