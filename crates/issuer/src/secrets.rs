//! Client secrets. (being written)
