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

#[cfg(test)]
mod tests {
    use super::List;

    #[test]
    fn lists_parse_and_print_the_same_way() {
        let l: List<f32> = "0.8, 0.85".parse().unwrap();
        assert_eq!(l.0, vec![0.8, 0.85]);
        assert_eq!(l.to_string(), "0.8,0.85");
        assert!("1,x".parse::<List<usize>>().unwrap_err().contains("\"x\""));
    }
}
