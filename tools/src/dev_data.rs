//! Where the internal dev data set lives, and the one check every tool makes before reading it.
//!
//! The data (real paraphrase texts, labelled pairs, a prompt stream and their embeddings) is
//! internal: its licences forbid shipping it, so it is never in the repository or the crate. On
//! the project's machines it sits beside the repository at `../shared/data/dev` (and a larger
//! split at `../shared/data/dev-large`). A tool pointed anywhere else must say so plainly instead
//! of failing on the first file it opens, so the check is here, shared by every tool.

use std::fmt;
use std::path::{Path, PathBuf};

/// The default `--data` directory, relative to the repository root (where cargo runs tools).
pub const DEFAULT_DIR: &str = "../shared/data/dev";
/// The flag that names the directory, in every tool that reads it.
pub const FLAG: &str = "--data";
/// The environment variable that overrides the default (the integration tests read it too).
pub const ENV: &str = "PARACACHE_DEV_DATA";

/// The `--data <DIR>` flag, shared by the tools so each spells and documents it the same way.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArg {
    /// Directory of the internal dev data set (texts.jsonl, embeddings.f32 or .f16, pairs.jsonl,
    /// replay.jsonl). Not shipped with the crate; on the project's machines it is
    /// ../shared/data/dev (or ../shared/data/dev-large) beside the repository.
    #[arg(long = "data", value_name = "DIR", env = ENV, default_value = DEFAULT_DIR)]
    pub dir: PathBuf,
}

/// Why the dev data could not be read.
#[derive(Debug)]
pub enum Error {
    /// The directory, or a file the tool needs in it, is not there.
    Missing {
        /// The directory as given.
        dir: PathBuf,
        /// The missing file; `None` when the directory itself is missing.
        file: Option<String>,
    },
    /// A file is there but could not be read or parsed.
    Bad {
        /// The file.
        path: PathBuf,
        /// What went wrong, with the line where there is one.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing { dir, file } => {
                match file {
                    None => write!(f, "no dev data: directory {} does not exist", dir.display())?,
                    Some(file) => write!(
                        f,
                        "no dev data: {} has no {file} (is it the dev data directory?)",
                        dir.display()
                    )?,
                }
                write!(
                    f,
                    "\n  This tool reads the project's internal dev data set (real paraphrase \
                     texts, labelled pairs, a prompt stream and their embeddings). It is not \
                     shipped with the crate: on the project's machines it lives at {DEFAULT_DIR} \
                     (or ../shared/data/dev-large) beside the repository.\n  Point the tool at \
                     it with {FLAG} <dir> (or the {ENV} environment variable); the default \
                     {DEFAULT_DIR} is relative to the directory the tool runs in."
                )
            }
            Error::Bad { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// A dev data directory that exists and holds the files a tool asked for.
#[derive(Debug, Clone)]
pub struct DevDir {
    dir: PathBuf,
}

impl DevDir {
    /// Check that `dir` exists and holds every file in `required`; the error names what is
    /// missing and how to point the tool at the data.
    pub fn open(dir: &Path, required: &[&str]) -> Result<DevDir, Error> {
        if !dir.is_dir() {
            return Err(Error::Missing {
                dir: dir.to_path_buf(),
                file: None,
            });
        }
        let d = DevDir {
            dir: dir.to_path_buf(),
        };
        if let Some(file) = required.iter().find(|f| !d.has(f)) {
            return Err(d.missing(file));
        }
        Ok(d)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Path of `name` in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the directory holds `name`.
    pub fn has(&self, name: &str) -> bool {
        self.file(name).is_file()
    }

    /// The error for a file of this directory that is not there.
    pub fn missing(&self, name: &str) -> Error {
        Error::Missing {
            dir: self.dir.clone(),
            file: Some(name.to_string()),
        }
    }

    /// The error for a file that is there but wrong.
    pub fn bad(&self, name: &str, reason: impl Into<String>) -> Error {
        Error::Bad {
            path: self.file(name),
            reason: reason.into(),
        }
    }

    /// Every non-blank line of `name` parsed as JSON; an error names the file and line.
    pub fn jsonl(&self, name: &str) -> Result<Vec<serde_json::Value>, Error> {
        let text = std::fs::read_to_string(self.file(name)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.missing(name)
            } else {
                self.bad(name, e.to_string())
            }
        })?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| self.bad(name, format!("line {}: {e}", i + 1)))
            })
            .collect()
    }

    /// `texts.jsonl`: text id to text.
    pub fn texts(&self) -> Result<std::collections::HashMap<usize, String>, Error> {
        self.jsonl("texts.jsonl")?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let id = t["id"].as_u64();
                let text = t["text"].as_str();
                match (id, text) {
                    (Some(id), Some(text)) => Ok((id as usize, text.to_string())),
                    _ => Err(self.bad("texts.jsonl", format!("record {}: no id or text", i + 1))),
                }
            })
            .collect()
    }
}
