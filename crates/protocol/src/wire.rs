//! Token request/response wire types and decoding (§4.2, §4.3.1, §4.4.1, §4.5.6). (being written)
