//! The one error type of the crate.
//!
//! Every problem a client can cause is reported as a [`QueryError`] that names the query
//! parameter at fault. The HTTP layer turns it into a VSPC `ErrorResponse` with status
//! 400, `type: "logical"`, `code: 400` and `parameterName` set to
//! [`QueryError::parameter`].

use std::fmt;

/// A client error in one of the collection query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The offending parameter: `"filter"`, `"sort"`, `"select"`, `"limit"` or `"offset"`.
    pub parameter: String,
    /// A human-readable sentence explaining what is wrong.
    pub message: String,
}

impl QueryError {
    /// Builds an error for `parameter` with the given message.
    pub fn new(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    pub(crate) fn filter(message: impl Into<String>) -> Self {
        Self::new(Param::Filter.name(), message)
    }

    pub(crate) fn sort(message: impl Into<String>) -> Self {
        Self::new(Param::Sort.name(), message)
    }

    pub(crate) fn select(message: impl Into<String>) -> Self {
        Self::new(Param::Select.name(), message)
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid `{}` parameter: {}",
            self.parameter, self.message
        )
    }
}

impl std::error::Error for QueryError {}

/// The query parameters this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Filter,
    Sort,
    Select,
    Limit,
    Offset,
}

impl Param {
    #[cfg(test)]
    pub(crate) const ALL: [Param; 5] = [
        Param::Filter,
        Param::Sort,
        Param::Select,
        Param::Limit,
        Param::Offset,
    ];

    /// The parameter's name as it appears in URLs and in error responses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Param::Filter => "filter",
            Param::Sort => "sort",
            Param::Select => "select",
            Param::Limit => "limit",
            Param::Offset => "offset",
        }
    }

    pub(crate) fn error(self, message: impl Into<String>) -> QueryError {
        QueryError::new(self.name(), message)
    }
}
