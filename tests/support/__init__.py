"""Test-support code shared by several test modules (not tests themselves).

- ``oidc``: ``OIDCServer``, an OAuth 2.0 client-credentials token endpoint and JWKS on
  127.0.0.1 that signs RS256 JWTs.
- ``topics``: ``create_topic``: create a topic and wait for its leaders, with whichever admin
  client the caller connects (the ``create_topic`` fixtures, ``SecureAdmin.create_topic``).
- ``kafka_admin``: ``Acl`` and ``SecureAdmin``: grant and revoke ACLs and create topics
  on the secured broker as its super user.
- ``secure_kafka``: ``SecureKafka``, what the ``secure_kafka`` fixture yields.
- ``records``: Hypothesis strategies for records and field paths (the records-preprocessor tests).
"""
