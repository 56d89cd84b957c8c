//! Delegation-chain validation (§4.3.4, §6.6.4, §9.3.2). (being written)
