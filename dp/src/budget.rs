//! Privacy accounting in zero-concentrated DP (ρ-zCDP, Bun and Steinke
//! 2016): the costs of releases add up; a pure ε-DP release costs ε²/2; the
//! total is shown to people as (ε, δ)-DP. One currency keeps the Laplace and
//! Gaussian mechanisms comparable and composes more tightly than adding ε's.

use crate::noise::Mechanism;

/// What one release under `mechanism` costs, in ρ.
pub fn rho_of(mechanism: Mechanism) -> f64 {
    match mechanism {
        Mechanism::Laplace { epsilon } => epsilon * epsilon / 2.0,
        Mechanism::Gaussian { rho } => rho,
    }
}

/// The (ε, δ)-DP guarantee of a total ρ: ε = ρ + 2√(ρ ln(1/δ)).
pub fn epsilon_of(rho: f64, delta: f64) -> f64 {
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

/// A privacy budget and what has been spent of it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    /// The whole budget, in ρ.
    pub total: f64,
    /// Spent so far, in ρ.
    pub spent: f64,
}

/// A charge the budget cannot cover; nothing was spent.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("this release costs ρ = {cost:.6}; the budget has ρ = {remaining:.6} left (of {total:.6})")]
pub struct Exhausted {
    /// What the release would cost.
    pub cost: f64,
    /// What is left.
    pub remaining: f64,
    /// The whole budget.
    pub total: f64,
}

impl Budget {
    /// A fresh budget of `total` ρ.
    pub fn new(total: f64) -> Budget {
        Budget { total, spent: 0.0 }
    }

    /// What is left, in ρ.
    pub fn remaining(&self) -> f64 {
        (self.total - self.spent).max(0.0)
    }

    /// Spends `cost` if the budget covers it; otherwise spends nothing.
    pub fn charge(&mut self, cost: f64) -> Result<(), Exhausted> {
        if !(cost.is_finite() && cost > 0.0) || cost > self.remaining() {
            return Err(Exhausted {
                cost,
                remaining: self.remaining(),
                total: self.total,
            });
        }
        self.spent += cost;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_compose_and_a_charge_beyond_the_budget_spends_nothing() {
        let mut b = Budget::new(1.0);
        // Two Laplace releases at ε = 1 cost 0.5 each: the budget is exactly spent.
        b.charge(rho_of(Mechanism::Laplace { epsilon: 1.0 })).unwrap();
        b.charge(rho_of(Mechanism::Laplace { epsilon: 1.0 })).unwrap();
        assert_eq!(b.remaining(), 0.0);
        let refused = b.charge(rho_of(Mechanism::Gaussian { rho: 0.01 })).unwrap_err();
        assert_eq!(refused.remaining, 0.0);
        assert!(refused.to_string().contains("left"), "{refused}");
        assert_eq!(b.spent, 1.0, "a refused charge spent something");
        assert!(Budget::new(1.0).charge(0.0).is_err(), "a free release is not a release");
        assert!(Budget::new(1.0).charge(f64::NAN).is_err());
    }

    #[test]
    fn rho_is_shown_as_epsilon_delta() {
        // ρ = 0.5, δ = 1e-6: ε = 0.5 + 2√(0.5 · ln 10⁶) ≈ 5.7566.
        let e = epsilon_of(0.5, 1e-6);
        assert!((e - 5.7566).abs() < 1e-3, "{e}");
        // More ρ, more ε; a smaller δ, more ε.
        assert!(epsilon_of(1.0, 1e-6) > e);
        assert!(epsilon_of(0.5, 1e-9) > e);
    }
}
