//! # inland-dp: noise for differentially private releases (#20)
//!
//! The first piece of the `dp` privacy mode: integer noise drawn by OpenDP's
//! exact samplers (Canonne, Kamath and Steinke 2020), never by a hand-written
//! floating-point mechanism, whose low bits leak (Mironov 2012). The scale is
//! computed exactly, as a rational, from the query's sensitivity and the
//! privacy it may spend; costs are accounted in ρ-zCDP ([`budget`]).
//! Grant budgets, clamping and the query path come next.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod budget;
pub mod noise;

pub use budget::{Budget, Exhausted, epsilon_of, rho_of};
pub use noise::{Mechanism, NoiseError, add_noise, scale_for, sigma};
