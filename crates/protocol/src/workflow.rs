//! Workflow step authorization and scope binding (§4.3.3, §4.5.5, §6.6.4, anchor A3). (being written)
