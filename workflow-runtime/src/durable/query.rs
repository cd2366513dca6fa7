//! Listing runs: the filter a console or a command line asks with, and the
//! page a store answers, newest first, paged by key so a page stays the
//! same while runs are added.

use std::fmt;
use std::str::FromStr;

use super::store::{RunRow, RunStatus};

/// Which runs to list, newest first: every field narrows the list.
///
/// ```
/// use workflow_runtime::durable::{RunFilter, RunStatus};
/// let failed_payments = RunFilter::new()
///     .workflow("Pay")
///     .status(RunStatus::Failed)
///     .id_prefix("order-")
///     .limit(20);
/// assert_eq!(failed_payments.page_size(), 20);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs started at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only runs started before this time (ms since the Unix epoch).
    pub until_ms: Option<i64>,
    /// Only runs whose id starts with this.
    pub id_prefix: Option<String>,
    /// Only runs listed after this one: the previous page's
    /// [`next`](RunPage::next).
    pub after: Option<Cursor>,
    /// How many runs a page holds at most (default 50, at most 1000).
    pub limit: Option<usize>,
}

/// The most runs one page holds.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 50;

impl RunFilter {
    /// Every run, 50 to a page.
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().page_size(), 50);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only runs of `workflow`.
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().workflow("Pay").workflow.as_deref(), Some("Pay"));
    /// ```
    pub fn workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    /// Only runs in `status`.
    ///
    /// ```
    /// # use workflow_runtime::durable::{RunFilter, RunStatus};
    /// assert_eq!(RunFilter::new().status(RunStatus::Failed).status, Some(RunStatus::Failed));
    /// ```
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs started at or after `ms` (since the Unix epoch).
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().since_ms(1_000).since_ms, Some(1_000));
    /// ```
    pub fn since_ms(mut self, ms: i64) -> Self {
        self.since_ms = Some(ms);
        self
    }

    /// Only runs started before `ms` (since the Unix epoch).
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().until_ms(2_000).until_ms, Some(2_000));
    /// ```
    pub fn until_ms(mut self, ms: i64) -> Self {
        self.until_ms = Some(ms);
        self
    }

    /// Only runs whose id starts with `prefix`.
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().id_prefix("order-").id_prefix.as_deref(), Some("order-"));
    /// ```
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = Some(prefix.into());
        self
    }

    /// The page after the one that ended at `cursor`.
    ///
    /// ```
    /// # use workflow_runtime::durable::{Cursor, RunFilter};
    /// let next: Cursor = "1700000000000:order-42".parse().unwrap();
    /// assert_eq!(RunFilter::new().after(next.clone()).after, Some(next));
    /// ```
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// At most `n` runs a page (1 to [`MAX_PAGE`]).
    ///
    /// ```
    /// # use workflow_runtime::durable::{MAX_PAGE, RunFilter};
    /// assert_eq!(RunFilter::new().limit(0).page_size(), 1);
    /// assert_eq!(RunFilter::new().limit(1_000_000).page_size(), MAX_PAGE);
    /// ```
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The page size this filter asks for, within 1 and [`MAX_PAGE`].
    ///
    /// ```
    /// # use workflow_runtime::durable::RunFilter;
    /// assert_eq!(RunFilter::new().limit(20).page_size(), 20);
    /// ```
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }

    /// Whether `run` passes every filter but the page's (what the memory
    /// store lists by; the databases say the same in SQL).
    pub(crate) fn admits(&self, run: &RunRow) -> bool {
        self.workflow.as_deref().is_none_or(|w| run.workflow == w)
            && self.status.is_none_or(|s| run.status == s)
            && self.since_ms.is_none_or(|t| run.created_ms >= t)
            && self.until_ms.is_none_or(|t| run.created_ms < t)
            && self
                .id_prefix
                .as_deref()
                .is_none_or(|p| run.id.starts_with(p))
            && self
                .after
                .as_ref()
                .is_none_or(|c| (run.created_ms, run.id.as_str()) < (c.created_ms, c.id.as_str()))
    }
}

/// Where a page ended: the last run's start time and id. Runs are listed
/// newest first, ties by id, so the next page starts right after it
/// whatever was added since.
///
/// ```
/// use workflow_runtime::durable::Cursor;
/// let cursor: Cursor = "1700000000000:order-42".parse().unwrap();
/// assert_eq!(cursor.id, "order-42");
/// assert_eq!(cursor.to_string(), "1700000000000:order-42");
/// assert!("order-42".parse::<Cursor>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last run's start time (ms since the Unix epoch).
    pub created_ms: i64,
    /// The last run's id.
    pub id: String,
}

impl Cursor {
    /// Where a page ending at `run` ended.
    ///
    /// ```
    /// use workflow_runtime::durable::{Cursor, RunRow};
    /// let run = RunRow::new("order-42", "Pay", "f", b"1".to_vec());
    /// let cursor = Cursor::of(&run);
    /// assert_eq!((cursor.created_ms, cursor.id.as_str()), (run.created_ms, "order-42"));
    /// ```
    pub fn of(run: &RunRow) -> Self {
        Cursor {
            created_ms: run.created_ms,
            id: run.id.clone(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.created_ms, self.id)
    }
}

/// A cursor's text was not `{ms}:{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCursor(pub String);

impl fmt::Display for BadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a page cursor (`{{ms}}:{{run id}}`)",
            self.0
        )
    }
}

impl std::error::Error for BadCursor {}

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, id) = s.split_once(':').ok_or_else(|| BadCursor(s.to_owned()))?;
        let created_ms = ms.parse().map_err(|_| BadCursor(s.to_owned()))?;
        Ok(Cursor {
            created_ms,
            id: id.to_owned(),
        })
    }
}

/// One page of runs, newest first.
///
/// ```
/// # use workflow_runtime::durable::{RunFilter, Store};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let page = Store::memory().runs(&RunFilter::new()).await.unwrap();
/// assert!(page.runs.is_empty() && page.next.is_none());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunPage {
    /// The runs on this page.
    pub runs: Vec<RunRow>,
    /// Where the next page starts, if there are more runs.
    pub next: Option<Cursor>,
}

impl RunPage {
    /// The page of `rows` (at most one more than `size`, newest first,
    /// as a store read them): the extra row only says there is a next
    /// page.
    pub(crate) fn of(mut rows: Vec<RunRow>, size: usize) -> Self {
        let more = rows.len() > size;
        rows.truncate(size);
        let next = more.then(|| rows.last().map(Cursor::of)).flatten();
        RunPage { runs: rows, next }
    }
}
