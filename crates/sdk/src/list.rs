//! Pages of a list, with cursor pagination.

use serde::Deserialize;

/// One page of a list: `{"object":"list","data":[…],"has_more":bool,"next_cursor":…}`.
///
/// To walk every page, pass [`List::next_cursor`] as `starting_after` until it is `None`:
///
/// ```no_run
/// # async fn run(client: altafinex::Client) -> Result<(), altafinex::Error> {
/// use altafinex::payments::ListPayments;
/// let mut params = ListPayments::new().limit(100);
/// loop {
///     let page = client.payments().list(&params).await?;
///     for payment in &page.data {
///         // …
///     }
///     match page.next_cursor() {
///         Some(cursor) => params = params.starting_after(cursor),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct List<T> {
    /// This page's objects.
    pub data: Vec<T>,
    /// Whether more objects follow.
    #[serde(default)]
    pub has_more: bool,
    /// The cursor of the next page (the last object's id), `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// The `starting_after` of the next page, or `None` when this is the last one.
    pub fn next_cursor(&self) -> Option<&str> {
        if self.has_more { self.next_cursor.as_deref() } else { None }
    }
}
