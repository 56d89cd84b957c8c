//! ajwt-jose (being written)
