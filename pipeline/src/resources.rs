//! Shared resources the binary hands to components at build time (the object store, a key
//! store, ...), looked up by type. The engine itself holds none of them, so it stays free of any
//! concrete storage.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::EngineError;

#[derive(Default, Clone)]
pub struct Resources {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Resources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the resource of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) -> &mut Self {
        self.by_type.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The resource of type `T`, or a configuration error naming the missing type.
    pub fn get<T: Any + Send + Sync>(&self) -> Result<&T, EngineError> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .ok_or_else(|| {
                EngineError::Config(format!(
                    "this component needs a {} resource, which the binary did not provide",
                    std::any::type_name::<T>()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lookup() {
        let mut r = Resources::new();
        r.insert(7u32).insert(String::from("store"));
        assert_eq!(*r.get::<u32>().unwrap(), 7);
        assert_eq!(r.get::<String>().unwrap(), "store");
        let err = r.get::<u64>().unwrap_err().to_string();
        assert!(err.contains("u64"), "{err}");
    }
}
