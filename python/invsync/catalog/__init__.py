"""The product catalog and the listing rules it is checked against: the catalog line's
schema (`schema`), reading a JSON Lines file (`read`), the rules in force for a policy's
channels (`rules`, which `invsync plan` prints) and the check itself (`check`)."""
