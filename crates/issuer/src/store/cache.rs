//! Cached store. (being written)
