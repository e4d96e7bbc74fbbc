//! Who sees what: the provider → reseller → company tree decides which organizations (and so
//! which servers, licenses, usage and reports) a user may see.

use std::collections::HashSet;

use tallyman_store::{Organization, OrganizationType, Role};
use uuid::Uuid;

use crate::error::AppResult;
use crate::App;

/// The organizations a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Provider roles see every organization.
    All,
    Organizations(HashSet<Uuid>),
}

impl Scope {
    pub fn contains(&self, organization: Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Organizations(set) => set.contains(&organization),
        }
    }
}

/// `root` and every organization below it in the provider → reseller → company tree.
pub fn subtree(orgs: &[Organization], root: Uuid) -> HashSet<Uuid> {
    let mut inside = HashSet::from([root]);
    // The tree is shallow; iterate to a fixed point so any depth is handled.
    loop {
        let before = inside.len();
        for org in orgs {
            if org.parent_uid.is_some_and(|p| inside.contains(&p)) {
                inside.insert(org.uid);
            }
        }
        if inside.len() == before {
            return inside;
        }
    }
}

impl App {
    /// What a user with `role` in `organization` may see: everything for provider roles, else
    /// the organization and everything below it.
    pub async fn scope(&self, role: Role, organization: Uuid) -> AppResult<Scope> {
        if role.organization_type() == OrganizationType::Provider {
            return Ok(Scope::All);
        }
        let orgs = self.store.organizations().await?;
        Ok(Scope::Organizations(subtree(&orgs, organization)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_membership() {
        let a = Uuid::new_v4();
        assert!(Scope::All.contains(a));
        assert!(Scope::Organizations(HashSet::from([a])).contains(a));
        assert!(!Scope::Organizations(HashSet::new()).contains(a));
    }
}
