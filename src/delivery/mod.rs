//! Getting a batch to the receiver: the HTTP client and how a reply is
//! classified ([`sender`]), the signature on each request ([`signing`]),
//! which addresses may be contacted at all ([`destination`]), and the
//! delivery log every attempt is written to ([`journal`]).
//!
//! This layer knows nothing of windows or ticks: it is given a body, a
//! batch id and a subscription, and says how the attempt went.

pub mod destination;
pub mod journal;
pub mod sender;
pub mod signing;
