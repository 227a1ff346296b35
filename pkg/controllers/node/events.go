package node

// Event reasons on Nodes. Warnings are things a user may have to fix; every
// Warning also counts in cloudprovider_aws_node_sync_errors_total{reason}.
const (
	ReasonSynced                 = "Synced"
	ReasonProviderIDInvalid      = "ProviderIDInvalid"
	ReasonProviderIDZoneMismatch = "ProviderIDZoneMismatch"
	ReasonInstanceNotFound       = "InstanceNotFound"
	ReasonDescribeFailed         = "DescribeInstanceFailed"
	ReasonNoPrimaryENI           = "NoPrimaryENI"
	ReasonIPv6NotAssigned        = "IPv6NotAssigned"
	ReasonIPv6AssignmentFailed   = "IPv6AssignmentFailed"
	ReasonAssignPending          = "IPv6AssignmentPending"
	ReasonMultiplePrefixes       = "MultiplePrefixes"
	ReasonPodCIDRMismatch        = "PodCIDRMismatch"
	ReasonNodeIPNotFound         = "NodeIPNotFound"
	ReasonNoAddressOfFamily      = "NoAddressOfFamily"
	ReasonAPIConflict            = "APIConflict"
	ReasonAPIWriteFailed         = "APIWriteFailed"
	ReasonRefreshFailed          = "RefreshFailed"
	ReasonCIDRNotAvailable       = "CIDRNotAvailable"
	ReasonIPv6AddressGone        = "IPv6AddressGone"
	ReasonPrimaryIPv6Failed      = "PrimaryIPv6Failed"
)
