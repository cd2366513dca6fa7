//! The typed handler registry: one async handler per request and response
//! type, registered once and shared, found by type when a step needs it.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::behavior::BoxFuture;
use crate::error::StepError;

/// A registered handler, type-erased for storage.
pub(crate) type HandlerFnOf<Req, Resp> = HandlerFn<Req, Resp>;
type HandlerFn<Req, Resp> =
    Arc<dyn Fn(Req) -> BoxFuture<'static, Result<Resp, StepError>> + Send + Sync>;

/// Names a handler by its request and response types.
///
/// ```
/// use workflow_runtime::handlers::HandlerKey;
/// let key = HandlerKey::of::<String, u64>();
/// assert_eq!(key.to_string(), "alloc::string::String -> u64");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerKey {
    request: TypeId,
    response: TypeId,
    /// The request type's name.
    pub request_name: &'static str,
    /// The response type's name.
    pub response_name: &'static str,
}

impl HandlerKey {
    /// The key of a handler from `Req` to `Resp`.
    ///
    /// ```
    /// use workflow_runtime::handlers::HandlerKey;
    /// assert_eq!(HandlerKey::of::<u8, u16>(), HandlerKey::of::<u8, u16>());
    /// assert_ne!(HandlerKey::of::<u8, u16>(), HandlerKey::of::<u16, u8>());
    /// ```
    pub fn of<Req: 'static, Resp: 'static>() -> Self {
        HandlerKey {
            request: TypeId::of::<Req>(),
            response: TypeId::of::<Resp>(),
            request_name: type_name::<Req>(),
            response_name: type_name::<Resp>(),
        }
    }
}

impl fmt::Display for HandlerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.request_name, self.response_name)
    }
}

/// No handler is registered for a request and response type.
///
/// ```
/// use workflow_runtime::handlers::{Handlers, MissingHandler};
/// let err = Handlers::builder().build().require::<String, u64>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "no handler registered for request `alloc::string::String` and response `u64`"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingHandler {
    /// The handler asked for.
    pub key: HandlerKey,
}

impl fmt::Display for MissingHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no handler registered for request `{}` and response `{}`",
            self.key.request_name, self.key.response_name
        )
    }
}

impl std::error::Error for MissingHandler {}

/// The registry: cheap to clone and share.
///
/// ```
/// use workflow_runtime::handlers::Handlers;
/// use workflow_runtime::prelude::*;
///
/// struct CreateOrder { cents: u64 }
/// #[derive(Debug, PartialEq)]
/// struct Order { id: u32, cents: u64 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handlers = Handlers::builder()
///     .register(|req: CreateOrder| async move {
///         Ok::<_, std::fmt::Error>(Order { id: 1, cents: req.cents })
///     })
///     .build();
/// let ctx = WorkflowContext::new("CreateOrder");
/// let order: Order = Workflow::given(&ctx, "a request", || 250)
///     .handle("create order", &handlers, |cents| CreateOrder { cents })
///     .await
///     .unwrap();
/// assert_eq!(order, Order { id: 1, cents: 250 });
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Handlers {
    map: Arc<HashMap<HandlerKey, Arc<dyn Any + Send + Sync>>>,
}

/// Builds a [`Handlers`] registry.
#[derive(Default)]
#[must_use]
pub struct HandlersBuilder {
    map: HashMap<HandlerKey, Arc<dyn Any + Send + Sync>>,
}

impl HandlersBuilder {
    /// Registers the handler from `Req` to `Resp`, replacing any earlier one.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// let handlers = Handlers::builder()
    ///     .register(|name: String| async move { Ok::<usize, std::fmt::Error>(name.len()) })
    ///     .build();
    /// assert!(handlers.require::<String, usize>().is_ok());
    /// ```
    pub fn register<Req, Resp, E, F, Fut>(mut self, handler: F) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        E: Into<StepError>,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let erased: HandlerFn<Req, Resp> = Arc::new(move |req| {
            let fut = handler(req);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.map
            .insert(HandlerKey::of::<Req, Resp>(), Arc::new(erased));
        self
    }

    /// The registry.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// assert!(Handlers::builder().build().keys().is_empty());
    /// ```
    pub fn build(self) -> Handlers {
        Handlers {
            map: Arc::new(self.map),
        }
    }
}

impl Handlers {
    /// Starts a registry.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// let handlers = Handlers::builder().build();
    /// # drop(handlers);
    /// ```
    pub fn builder() -> HandlersBuilder {
        HandlersBuilder::default()
    }

    /// Whether a handler from `Req` to `Resp` is registered.
    ///
    /// ```
    /// use workflow_runtime::handlers::Handlers;
    /// assert!(Handlers::builder().build().require::<u8, u8>().is_err());
    /// ```
    pub fn require<Req: 'static, Resp: 'static>(&self) -> Result<(), MissingHandler> {
        self.check(HandlerKey::of::<Req, Resp>())
    }

    /// Whether the handler `key` names is registered.
    ///
    /// ```
    /// use workflow_runtime::handlers::{HandlerKey, Handlers};
    /// assert!(Handlers::builder().build().check(HandlerKey::of::<u8, u8>()).is_err());
    /// ```
    pub fn check(&self, key: HandlerKey) -> Result<(), MissingHandler> {
        match self.map.contains_key(&key) {
            true => Ok(()),
            false => Err(MissingHandler { key }),
        }
    }

    /// The registered keys.
    ///
    /// ```
    /// use workflow_runtime::handlers::{HandlerKey, Handlers};
    /// let handlers = Handlers::builder()
    ///     .register(|n: u8| async move { Ok::<u16, std::fmt::Error>(n.into()) })
    ///     .build();
    /// assert_eq!(handlers.keys(), [HandlerKey::of::<u8, u16>()]);
    /// ```
    pub fn keys(&self) -> Vec<HandlerKey> {
        self.map.keys().copied().collect()
    }

    pub(crate) fn get<Req: 'static, Resp: 'static>(
        &self,
    ) -> Result<HandlerFn<Req, Resp>, MissingHandler> {
        let key = HandlerKey::of::<Req, Resp>();
        self.map
            .get(&key)
            .and_then(|h| h.downcast_ref::<HandlerFn<Req, Resp>>())
            .cloned()
            .ok_or(MissingHandler { key })
    }

    /// Calls the handler from `Req` to `Resp`.
    ///
    /// ```
    /// # use workflow_runtime::handlers::Handlers;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let handlers = Handlers::builder()
    ///     .register(|n: u32| async move { Ok::<u64, std::fmt::Error>(u64::from(n) * 2) })
    ///     .build();
    /// assert_eq!(handlers.call::<u32, u64>(21).await.unwrap(), 42);
    /// assert!(handlers.call::<u32, String>(1).await.is_err());
    /// # }
    /// ```
    pub async fn call<Req: 'static, Resp: 'static>(&self, request: Req) -> Result<Resp, StepError> {
        let handler = self.get::<Req, Resp>().map_err(StepError::new)?;
        handler(request).await
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.map.keys().map(|k| k.to_string()))
            .finish()
    }
}
