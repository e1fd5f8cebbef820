//! The one error type of the ovs-ofctl syntax module.
//!
//! Every error that concerns a piece of the input names that piece and its 1-based column
//! (counted in characters from the start of the flow text or file line), so that an operator
//! can find the mistake without re-reading the whole flow.

use thiserror::Error;

/// Why a flow (or a flow file) was rejected.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum OfctlError {
    /// A token could not be understood: unknown keyword or action, bad value, bad mask, value
    /// out of range, a keyword not allowed with this command, and so on.
    #[error("column {column}: {message} (at `{token}`)")]
    Syntax {
        /// The offending token, as written.
        token: String,
        /// 1-based column of the token's first character.
        column: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A match field was given without the match guaranteeing the protocol it belongs to
    /// (Open vSwitch's meta-flow prerequisites), e.g. `tp_dst=80` without `tcp`/`udp`/`sctp`.
    #[error("column {column}: field `{field}` requires {prerequisite}; add it to the match")]
    MissingPrerequisite {
        /// The field as written (`tp_dst`, `nw_src`, ...).
        field: String,
        /// 1-based column of the field's name.
        column: usize,
        /// The missing prerequisite in ovs-ofctl words.
        prerequisite: String,
    },
    /// An action needs something that neither the match nor the actions before it guarantee
    /// (Open vSwitch calls this an inconsistent match), e.g. `mod_nw_src` without `ip`.
    #[error("column {column}: action `{action}` requires {prerequisite} in the match or in earlier actions")]
    InconsistentAction {
        /// The action as written.
        action: String,
        /// 1-based column of the action.
        column: usize,
        /// The missing prerequisite in ovs-ofctl words.
        prerequisite: String,
    },
    /// A command that needs actions (`add-flow`, `mod-flows`) has no `actions=` part.
    #[error("must specify an action (`actions=...`; `actions=drop` for none)")]
    MissingActions,
    /// An error in one line of a flow file.
    #[error("line {line}: {source}")]
    Line {
        /// 1-based line number in the file.
        line: usize,
        /// The error in that line (columns count within the line).
        #[source]
        source: Box<OfctlError>,
    },
}

impl OfctlError {
    /// The 1-based column the error points at, if it points at one.
    pub fn column(&self) -> Option<usize> {
        match self {
            OfctlError::Syntax { column, .. }
            | OfctlError::MissingPrerequisite { column, .. }
            | OfctlError::InconsistentAction { column, .. } => Some(*column),
            OfctlError::MissingActions => None,
            OfctlError::Line { source, .. } => source.column(),
        }
    }

    /// The 1-based file line of the error, for errors from a flow file.
    pub fn line(&self) -> Option<usize> {
        match self {
            OfctlError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub(crate) fn syntax(input: &str, token: &str, message: impl Into<String>) -> OfctlError {
        OfctlError::Syntax {
            token: token.to_string(),
            column: column_of(input, token),
            message: message.into(),
        }
    }
}

/// The 1-based character column at which `token` (a sub-slice of `input`) starts.
///
/// A `token` that is not a sub-slice of `input` (which the parser never produces) reports
/// column 1 rather than panicking.
pub(crate) fn column_of(input: &str, token: &str) -> usize {
    let start = input.as_ptr() as usize;
    let at = token.as_ptr() as usize;
    if at < start || at > start + input.len() {
        return 1;
    }
    let offset = at - start;
    match input.get(..offset) {
        Some(prefix) => prefix.chars().count() + 1,
        None => 1,
    }
}
