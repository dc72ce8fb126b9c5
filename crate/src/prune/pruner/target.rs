//! How much to prune: `sparsity=0.5`, `macs=0.4`, `params=0.5` or `blocks=3`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::base::error::{Error, Result};

/// Parsed once, where it enters (a flag, a config file, a sweep list), and
/// typed from there to the result row; written as people write it
/// (`macs=0.4`), so configs and records read as before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Fraction of the prunable units (or weights, for weight-level methods) removed.
    Sparsity(f32),
    /// Fraction of the dense model's MACs removed.
    Macs(f32),
    /// Fraction of the dense model's parameters removed.
    Params(f32),
    /// Number of residual blocks removed.
    Blocks(usize),
    /// Fraction of the dense model's forward time removed, as predicted from
    /// each layer's time measured alone on the run's device
    /// ([`crate::metrics::latency::per_layer`]); the result row reports
    /// what the clock then says.
    Latency(f32),
}

impl FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::config("target", s, reason.to_string());
        let (kind, value) = s.split_once('=').unwrap_or(("sparsity", s));
        let fraction = || -> Result<f32> {
            let v: f32 = value
                .trim()
                .parse()
                .map_err(|_| bad("the value must be a number"))?;
            if (0.0..1.0).contains(&v) {
                Ok(v)
            } else {
                Err(bad(
                    "a fraction removed must be in [0, 1): 0.5 removes half",
                ))
            }
        };
        match kind.trim() {
            "sparsity" => Ok(Target::Sparsity(fraction()?)),
            "macs" | "flops" => Ok(Target::Macs(fraction()?)),
            "params" => Ok(Target::Params(fraction()?)),
            "latency" => Ok(Target::Latency(fraction()?)),
            "blocks" => value
                .trim()
                .parse()
                .map(Target::Blocks)
                .map_err(|_| bad("blocks=N takes a whole number of blocks")),
            _ => Err(bad(
                "use sparsity=F, macs=F, params=F, latency=F (fractions removed) or blocks=N",
            )),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sparsity(v) => write!(f, "sparsity={v}"),
            Target::Macs(v) => write!(f, "macs={v}"),
            Target::Params(v) => write!(f, "params={v}"),
            Target::Blocks(n) => write!(f, "blocks={n}"),
            Target::Latency(v) => write!(f, "latency={v}"),
        }
    }
}

/// A result row's target: the method's, or none for the dense row (written
/// `-`, as tables and records always showed it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RowTarget(pub Option<Target>);

impl From<Target> for RowTarget {
    fn from(t: Target) -> Self {
        RowTarget(Some(t))
    }
}

impl fmt::Display for RowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(t) => t.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl Serialize for RowTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RowTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "-" {
            return Ok(RowTarget(None));
        }
        text.parse()
            .map(|t| RowTarget(Some(t)))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_written_and_read_as_people_write_it() {
        for text in [
            "sparsity=0.5",
            "macs=0.404",
            "params=0.25",
            "blocks=3",
            "latency=0.3",
        ] {
            let t: Target = text.parse().unwrap();
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Target>(&json).unwrap(), t);
        }
        let e = serde_json::from_str::<Target>("\"macs=2\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0, 1)"), "{e}");
    }

    #[test]
    fn a_rows_target_is_a_target_or_a_dash() {
        let dense: RowTarget = serde_json::from_str("\"-\"").unwrap();
        assert_eq!(dense, RowTarget(None));
        assert_eq!(serde_json::to_string(&dense).unwrap(), "\"-\"");
        let row: RowTarget = serde_json::from_str("\"macs=0.404\"").unwrap();
        assert_eq!(row, RowTarget::from(Target::Macs(0.404)));
        assert_eq!(row.to_string(), "macs=0.404");
        assert!(serde_json::from_str::<RowTarget>("\"speed=2\"").is_err());
    }

    #[test]
    fn parses_every_form_and_rejects_out_of_range() {
        assert_eq!("0.5".parse::<Target>().unwrap(), Target::Sparsity(0.5));
        assert_eq!("macs=0.4".parse::<Target>().unwrap(), Target::Macs(0.4));
        assert_eq!("flops=0.4".parse::<Target>().unwrap(), Target::Macs(0.4));
        assert_eq!(
            "params=0.25".parse::<Target>().unwrap(),
            Target::Params(0.25)
        );
        assert_eq!("blocks=3".parse::<Target>().unwrap(), Target::Blocks(3));
        for bad in ["1.0", "macs=1.2", "-0.1", "blocks=x", "speed=2", "macs=abc"] {
            let e = bad.parse::<Target>().unwrap_err().to_string();
            assert!(e.contains("target"), "{bad}: {e}");
        }
        assert_eq!(Target::Macs(0.4).to_string(), "macs=0.4");
    }
}
