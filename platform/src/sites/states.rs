//! A site's states, each stored as a word under a `CHECK` constraint of the same words.

crate::text_enum! {
    /// What the user asked a site to be (`sites.desired_state`).
    pub enum DesiredState {
        Running => "running",
        Stopped => "stopped",
        Deleted => "deleted",
    }
}

crate::text_enum! {
    /// What the reconciler last achieved (`sites.status`).
    pub enum SiteStatus {
        /// Created; no pass has started.
        Pending => "pending",
        Provisioning => "provisioning",
        /// Running, healthy and routed.
        Active => "active",
        Stopping => "stopping",
        Stopped => "stopped",
        /// The last pass failed; retried with backoff.
        Failed => "failed",
        Deleting => "deleting",
        /// Gone: container, volume, schema and role removed. Kept for the record.
        Deleted => "deleted",
    }
}

impl SiteStatus {
    /// The status a pass ends in when it reaches `desired`.
    pub fn reached(desired: DesiredState) -> Self {
        match desired {
            DesiredState::Running => SiteStatus::Active,
            DesiredState::Stopped => SiteStatus::Stopped,
            DesiredState::Deleted => SiteStatus::Deleted,
        }
    }

    /// The status while a pass works towards `desired`.
    pub fn towards(desired: DesiredState) -> Self {
        match desired {
            DesiredState::Running => SiteStatus::Provisioning,
            DesiredState::Stopped => SiteStatus::Stopping,
            DesiredState::Deleted => SiteStatus::Deleting,
        }
    }

    /// Whether the reconciler is done with the site for now.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            SiteStatus::Active | SiteStatus::Stopped | SiteStatus::Failed | SiteStatus::Deleted
        )
    }
}

crate::text_enum! {
    /// Why a deployment exists (`deployments.reason`).
    pub enum DeploymentReason {
        /// The site was created.
        Create => "create",
        Restart => "restart",
        Start => "start",
        Stop => "stop",
        Delete => "delete",
        /// The organization's plan changed: new limits.
        Plan => "plan",
        /// After a failure.
        Retry => "retry",
        /// The real world drifted from the desired state (a container vanished).
        Repair => "repair",
        /// A pass found no deployment for the current generation.
        Reconcile => "reconcile",
        /// Billing deleted the site (the grace period after a cancellation ended).
        Billing => "billing",
        /// The site's environment settings changed: a new container with them.
        Settings => "settings",
    }
}

impl DeploymentReason {
    /// Why the deployment ran, in words.
    pub fn title(self) -> &'static str {
        match self {
            DeploymentReason::Create => "Site created",
            DeploymentReason::Restart => "Restart",
            DeploymentReason::Start => "Start",
            DeploymentReason::Stop => "Stop",
            DeploymentReason::Delete => "Deletion",
            DeploymentReason::Plan => "Plan change",
            DeploymentReason::Retry => "Retry",
            DeploymentReason::Repair => "Automatic repair",
            DeploymentReason::Reconcile => "Update",
            DeploymentReason::Billing => "Deletion after the subscription ended",
            DeploymentReason::Settings => "Settings changed",
        }
    }

    /// The audit log's action for a deployment a user asked for.
    pub fn audit_action(self) -> &'static str {
        match self {
            DeploymentReason::Restart => "site.restart",
            DeploymentReason::Start => "site.start",
            DeploymentReason::Stop => "site.stop",
            DeploymentReason::Delete | DeploymentReason::Billing => "site.delete",
            DeploymentReason::Create => "site.create",
            DeploymentReason::Plan => "site.plan",
            DeploymentReason::Settings => "site.settings",
            DeploymentReason::Retry | DeploymentReason::Repair | DeploymentReason::Reconcile => {
                "site.reconcile"
            }
        }
    }
}

crate::text_enum! {
    /// Where a deployment is (`deployments.status`).
    pub enum DeploymentStatus {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

crate::text_enum! {
    /// One step of a deployment, in the order they run (`deployment_steps.step`).
    pub enum DeploymentStep {
        /// The tenant schema and role.
        Database => "database",
        Image => "image",
        Container => "container",
        Start => "start",
        Health => "health",
        Stop => "stop",
        RemoveContainer => "remove-container",
        RemoveVolume => "remove-volume",
        DropDatabase => "drop-database",
    }
}

impl DeploymentStep {
    /// The step in words, as the site page lists it.
    pub fn title(self) -> &'static str {
        match self {
            DeploymentStep::Database => "Set up the database",
            DeploymentStep::Image => "Prepare the application",
            DeploymentStep::Container => "Set up the server",
            DeploymentStep::Start => "Start",
            DeploymentStep::Health => "Check that the site answers",
            DeploymentStep::Stop => "Stop",
            DeploymentStep::RemoveContainer => "Remove the server",
            DeploymentStep::RemoveVolume => "Remove the files",
            DeploymentStep::DropDatabase => "Remove the database",
        }
    }

    /// Whether the step's own report is plain words a customer may read ("restarted",
    /// "already running"); the others name roles, images and containers.
    pub fn reports_plainly(self) -> bool {
        matches!(self, DeploymentStep::Start | DeploymentStep::Stop)
    }

    /// What running a site takes.
    pub const PROVISION: [DeploymentStep; 5] = [
        DeploymentStep::Database,
        DeploymentStep::Image,
        DeploymentStep::Container,
        DeploymentStep::Start,
        DeploymentStep::Health,
    ];
    /// What deleting a site takes (its finalizers).
    pub const DELETE: [DeploymentStep; 3] = [
        DeploymentStep::RemoveContainer,
        DeploymentStep::RemoveVolume,
        DeploymentStep::DropDatabase,
    ];
}

crate::text_enum! {
    /// How a step ended (`deployment_steps.status`).
    pub enum StepStatus {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}
