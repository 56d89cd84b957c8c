//! Intent-token claims (§4.4.2). (being written)
