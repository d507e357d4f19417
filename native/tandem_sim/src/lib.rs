//! The fuzzy tester (`tandem-fuzz`): real Tandem clients, random edits and
//! injected faults, driven by one seeded PRNG, ending in a convergence verdict.

pub mod ledger;
pub mod net;
pub mod proxy;
pub mod region;
pub mod server;
pub mod sim;
pub mod timeline;
pub mod workload;
