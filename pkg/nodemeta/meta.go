package nodemeta

import (
	"fmt"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// LabelZoneID is the node label holding the zone ID, as upstream sets it.
const LabelZoneID = "topology.k8s.aws/zone-id"

// LabelNetworkNodePrefix + "1", "2", "3"... hold an instance's network nodes
// from DescribeInstanceTopology, top layer first, as upstream sets them.
const LabelNetworkNodePrefix = "topology.k8s.aws/network-node-layer-"

// Mode says what the node controller does about a node's IPv6 address and
// /80 prefix: the cloud config's IPv6PrefixDelegation.
type Mode string

// Modes, as written in the cloud config.
const (
	// ModeOff leaves IPv6 and pod CIDRs alone (upstream behaviour).
	ModeOff Mode = "off"
	// ModeAdopt uses an IPv6 address and /80 prefix already on the primary
	// ENI and never assigns; the taint stays until they appear.
	ModeAdopt Mode = "adopt"
	// ModeAssign assigns the address and prefix when missing.
	ModeAssign Mode = "assign"
)

// ParseMode parses a mode, case-insensitively; "" is ModeOff.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeOff, nil
	case ModeOff, ModeAdopt, ModeAssign:
		return m, nil
	}
	return "", fmt.Errorf("invalid value %q (want off, adopt or assign)", s)
}

// IPv6 reports whether the mode manages IPv6 (adopt or assign).
func (m Mode) IPv6() bool { return m == ModeAdopt || m == ModeAssign }

// ProviderID is the providerID a node of inst gets when it has none.
func ProviderID(inst *ec2.Instance) string { return providerid.Format(inst.Zone, inst.ID) }

// Labels returns the labels upstream's node controller and AWS provider set
// on a node of inst: instance type and zone (GA and beta), region (GA and
// beta) when known, the zone ID unless the node already carries one
// (upstream never overwrites it), and the network node layers of
// inst.NetworkNodes unless the node carries layer 1 already.
func Labels(node *v1.Node, inst *ec2.Instance, region string) map[string]string {
	want := map[string]string{}
	if inst.Type != "" {
		want[v1.LabelInstanceTypeStable] = inst.Type
		want[v1.LabelInstanceType] = inst.Type
	}
	if inst.Zone != "" {
		want[v1.LabelTopologyZone] = inst.Zone
		want[v1.LabelFailureDomainBetaZone] = inst.Zone
	}
	if region != "" {
		want[v1.LabelTopologyRegion] = region
		want[v1.LabelFailureDomainBetaRegion] = region
	}
	if _, ok := node.Labels[LabelZoneID]; !ok && inst.ZoneID != "" {
		want[LabelZoneID] = inst.ZoneID
	}
	// Like upstream, never overwrite topology labels already set.
	if _, ok := node.Labels[LabelNetworkNodePrefix+"1"]; !ok {
		for i, nn := range inst.NetworkNodes {
			want[LabelNetworkNodePrefix+strconv.Itoa(i+1)] = nn
		}
	}
	return want
}
