//! The authorization server of *draft-goswami-agentic-jwt-00* (Agentic JWT).
//! (being written)
pub mod keys;
pub mod secrets;
pub mod store;
