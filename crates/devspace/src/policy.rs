//! Roles and what each may do: one table, checked by every handler on the server.

/// A Dev Space user's role within their merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including users.
    Owner,
    /// Manages keys, origins, IP allowlists, webhook endpoints and users.
    Admin,
    /// Reads keys' metadata, webhooks and logs; creates test keys.
    Developer,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Self; 4] = [Self::Owner, Self::Admin, Self::Developer, Self::Viewer];

    /// Stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Viewer => "viewer",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Something a user does in Dev Space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See keys' metadata (never secrets).
    ViewKeys,
    /// Create a test-mode key.
    CreateTestKey,
    /// Create a live-mode key.
    CreateLiveKey,
    /// Revoke, disable or rotate a key.
    ManageKeys,
    /// Change a key's allowed origins or IP allowlist.
    EditAllowlist,
    /// Read the audit log (and export it).
    ViewAudit,
    /// Read security alerts.
    ViewAlerts,
    /// Read payments and refunds (masked cards only).
    ViewPayments,
    /// Read webhook endpoints (never their secrets).
    ViewWebhooks,
    /// Create webhook endpoints, rotate their secrets, delete them.
    ManageWebhooks,
    /// Read tokens' metadata (brand, last 4, expiry, fingerprint; never a card number).
    ViewTokens,
    /// See who has access.
    ViewUsers,
    /// Invite users, change roles.
    ManageUsers,
}

/// Who may do what: `(action, [owner, admin, developer, viewer])`.
pub const POLICY: &[(Action, [bool; 4])] = &[
    (Action::ViewKeys, [true, true, true, true]),
    (Action::CreateTestKey, [true, true, true, false]),
    (Action::CreateLiveKey, [true, true, false, false]),
    (Action::ManageKeys, [true, true, false, false]),
    (Action::EditAllowlist, [true, true, false, false]),
    (Action::ViewAudit, [true, true, true, true]),
    (Action::ViewAlerts, [true, true, true, true]),
    (Action::ViewPayments, [true, true, true, true]),
    (Action::ViewWebhooks, [true, true, true, true]),
    (Action::ManageWebhooks, [true, true, false, false]),
    (Action::ViewTokens, [true, true, true, true]),
    (Action::ViewUsers, [true, true, true, true]),
    (Action::ManageUsers, [true, true, false, false]),
];

/// Whether `role` may do `action` (an action missing from the table is denied).
pub fn allows(role: Role, action: Action) -> bool {
    let column = match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Developer => 2,
        Role::Viewer => 3,
    };
    POLICY.iter().find(|(a, _)| *a == action).and_then(|(_, cols)| cols.get(column)).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert!(allows(Role::Owner, Action::ManageUsers));
        assert!(allows(Role::Admin, Action::EditAllowlist));
        assert!(allows(Role::Developer, Action::CreateTestKey));
        assert!(!allows(Role::Developer, Action::CreateLiveKey));
        assert!(!allows(Role::Developer, Action::ManageKeys));
        assert!(!allows(Role::Viewer, Action::CreateTestKey));
        assert!(allows(Role::Viewer, Action::ViewAudit));
        assert!(allows(Role::Viewer, Action::ViewTokens));
        assert!(!allows(Role::Developer, Action::ManageWebhooks));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
