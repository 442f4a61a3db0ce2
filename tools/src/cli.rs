//! Flag value types the tools share.

use std::fmt;
use std::str::FromStr;

/// A comma-separated list flag (`--threads 1,2,4`): one argument, so lists can also be
/// positional, and its `Display` is the same spelling, so clap shows defaults as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T: FromStr> FromStr for List<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let items = s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .map_err(|e| format!("{x:?} in list {s:?}: {e}"))
            })
            .collect::<Result<Vec<T>, String>>()?;
        Ok(List(items))
    }
}

impl<T: fmt::Display> fmt::Display for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

impl<T> std::ops::Deref for List<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

/// `--graph-engine links|hnsw-rs`: which graph a tool's cache builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Engine(pub paracache::GraphEngine);

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "links" => Ok(Engine(paracache::GraphEngine::Links)),
            "hnsw-rs" => Ok(Engine(paracache::GraphEngine::HnswRs)),
            _ => Err(format!("{s:?}: the graph engines are links and hnsw-rs")),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            paracache::GraphEngine::HnswRs => "hnsw-rs",
            _ => "links",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Engine, List};

    #[test]
    fn engines_parse_and_print_the_same_way() {
        for name in ["links", "hnsw-rs"] {
            assert_eq!(name.parse::<Engine>().unwrap().to_string(), name);
        }
        assert_eq!(
            "hnsw-rs".parse::<Engine>().unwrap().0,
            paracache::GraphEngine::HnswRs
        );
        assert!("faiss".parse::<Engine>().is_err());
    }

    #[test]
    fn lists_parse_and_print_the_same_way() {
        let l: List<f32> = "0.8, 0.85".parse().unwrap();
        assert_eq!(l.0, vec![0.8, 0.85]);
        assert_eq!(l.to_string(), "0.8,0.85");
        assert!("1,x".parse::<List<usize>>().unwrap_err().contains("\"x\""));
    }
}
