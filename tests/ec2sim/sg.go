package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Security groups: the VPC's default group, an optional node group per
// cluster (Scenario.ClusterID), groups of the scenario and groups created
// through the API. docs/reference/ec2sim.md "Security groups" lists what is
// emulated and the AWS pages each rule comes from.

var (
	sgIDRe  = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgrIDRe = regexp.MustCompile(`^sgr-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// sgTextRe is the character set AWS allows in group names, group
	// descriptions and rule descriptions (API_CreateSecurityGroup).
	sgTextRe = regexp.MustCompile(`^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$`)
)

// Quotas of the VPC quotas page (amazon-vpc-limits.html), defaults.
const (
	maxRulesPerGroup     = 60 // per direction and per address family
	maxGroupsPerENI      = 5
	maxGroupsPerRegion   = 2500
	defaultGroupName     = "default"
	defaultGroupDescribe = "default VPC security group"
)

// SecurityGroup is a VPC security group, in scenario form (Scenario.
// SecurityGroups) and as SecurityGroups() and State() report it.
type SecurityGroup struct {
	// ID is sg- + 17 hex digits; generated when empty.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Description defaults to the name.
	Description string `json:"description,omitempty"`
	// VPC defaults to the first VPC.
	VPC  string            `json:"vpc,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
	// Ingress rules. In a scenario, Group may name a group of the same VPC
	// by ID or by name.
	Ingress []SecurityGroupRule `json:"ingress,omitempty"`
	// Egress rules. In a scenario, nil means AWS's default rule for a new
	// group (all traffic to 0.0.0.0/0).
	Egress []SecurityGroupRule `json:"egress,omitempty"`
	// Default marks the VPC's default group (reported only).
	Default bool `json:"default,omitempty"`
}

// SecurityGroupRule is one rule: one protocol, one port range and one
// source (an IPv4 or IPv6 CIDR, or a security group).
type SecurityGroupRule struct {
	// ID is the rule's sgr- ID (reported only).
	ID string `json:"id,omitempty"`
	// Protocol is tcp, udp, icmp, icmpv6, -1 (all) or a protocol number;
	// 6, 17, 1 and 58 are stored as tcp, udp, icmp and icmpv6.
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the port range (tcp, udp), the ICMP type and
	// code (icmp, icmpv6; -1 = all), and -1 for every other protocol.
	FromPort int `json:"fromPort"`
	ToPort   int `json:"toPort"`
	// CIDR (IPv4 or IPv6) or Group (sg- ID) is the source.
	CIDR        string `json:"cidr,omitempty"`
	Group       string `json:"group,omitempty"`
	Description string `json:"description,omitempty"`
}

type secGroup struct {
	seq             int
	id, name, desc  string
	vpc             *vpc
	isDefault       bool
	tags            map[string]string
	ingress, egress []*sgRule
}

type sgRule struct {
	id       string
	proto    string
	from, to int
	cidr     netip.Prefix // invalid for a group reference
	group    string
	desc     string
	tags     map[string]string
}

// sgState is the security-group part of the world.
type sgState struct {
	groups    []*secGroup
	seq       uint64
	ruleSeq   uint64
	clusterID string
	nodeGroup *secGroup // the cluster's node group, nil without ClusterID
}

// eniAttrs are the ENI attributes ModifyNetworkInterfaceAttribute changes.
type eniAttrs struct {
	groups    []*secGroup
	srcDstOff bool // sourceDestCheck is true unless this is set
	primaryV6 bool // EnablePrimaryIpv6 was set (or the scenario flagged an address)
	desc      string
}

func (w *world) newSGID() string {
	for {
		w.sec.seq++
		// Own counter space: adding groups never shifts other generated IDs.
		id := genID("sg-", w.seed, 1<<40|w.sec.seq)
		if !w.ids[id] {
			w.ids[id] = true
			return id
		}
	}
}

func (w *world) newRuleID() string {
	w.sec.ruleSeq++
	return genID("sgr-", w.seed, 1<<41|w.sec.ruleSeq)
}

func (w *world) groupByID(id string) *secGroup {
	for _, g := range w.sec.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

// groupByName finds a group by name (case-insensitive, as AWS compares
// names) in one VPC.
func (w *world) groupByName(v *vpc, name string) *secGroup {
	for _, g := range w.sec.groups {
		if g.vpc == v && strings.EqualFold(g.name, name) {
			return g
		}
	}
	return nil
}

func (w *world) defaultGroup(v *vpc) *secGroup {
	for _, g := range w.sec.groups {
		if g.vpc == v && g.isDefault {
			return g
		}
	}
	return nil
}

// addGroup appends g with the next sequence number (paging order).
func (w *world) addGroup(g *secGroup) {
	g.seq = 1
	if n := len(w.sec.groups); n > 0 {
		g.seq = w.sec.groups[n-1].seq + 1
	}
	w.sec.groups = append(w.sec.groups, g)
}

func (w *world) newRule(proto string, from, to int, cidr netip.Prefix, group, desc string) *sgRule {
	return &sgRule{id: w.newRuleID(), proto: proto, from: from, to: to, cidr: cidr, group: group, desc: desc}
}

// allTraffic is the rule "all protocols to or from cidr".
func (w *world) allTraffic(cidr string) *sgRule {
	return w.newRule("-1", -1, -1, netip.MustParsePrefix(cidr), "", "")
}

// buildSecurityGroups creates every VPC's default group, the cluster's node
// group and the scenario's groups.
func (w *world) buildSecurityGroups(s *Scenario) error {
	for _, v := range w.vpcs {
		// AWS's default rules: inbound from the group itself, outbound to
		// 0.0.0.0/0 and, with an IPv6 CIDR, ::/0 (default-security-group.html).
		g := &secGroup{id: w.newSGID(), name: defaultGroupName, desc: defaultGroupDescribe, vpc: v, isDefault: true, tags: map[string]string{}}
		g.ingress = []*sgRule{w.newRule("-1", -1, -1, netip.Prefix{}, g.id, "")}
		g.egress = []*sgRule{w.allTraffic("0.0.0.0/0")}
		if v.v6.IsValid() {
			g.egress = append(g.egress, w.allTraffic("::/0"))
		}
		w.addGroup(g)
	}
	w.sec.clusterID = s.ClusterID
	if id := s.ClusterID; id != "" {
		v := w.vpcs[0]
		name := id + "-node"
		g := &secGroup{id: w.newSGID(), name: name, desc: "Kubernetes cluster " + id + ": nodes", vpc: v,
			tags: map[string]string{"Name": name, clusterTagPrefix + id: "owned"}}
		if err := checkGroupText("name", name); err != nil {
			return fmt.Errorf("clusterID %q: %w", id, err)
		}
		g.ingress = []*sgRule{w.newRule("-1", -1, -1, netip.Prefix{}, g.id, "")}
		g.egress = []*sgRule{w.allTraffic("0.0.0.0/0")}
		if v.v6.IsValid() {
			g.egress = append(g.egress, w.allTraffic("::/0"))
		}
		w.addGroup(g)
		w.sec.nodeGroup = g
	}
	// Two passes: rules may reference any group of the scenario.
	made := make([]*secGroup, len(s.SecurityGroups))
	for i, sg := range s.SecurityGroups {
		g, err := w.scenarioGroup(sg)
		if err != nil {
			return fmt.Errorf("security group %d (%s): %w", i, sg.Name, err)
		}
		made[i] = g
	}
	for i, sg := range s.SecurityGroups {
		g := made[i]
		for _, r := range sg.Ingress {
			nr, err := w.scenarioRule(g, r)
			if err != nil {
				return fmt.Errorf("security group %s ingress: %w", g.id, err)
			}
			g.ingress = append(g.ingress, nr)
		}
		if sg.Egress == nil {
			g.egress = []*sgRule{w.allTraffic("0.0.0.0/0")}
		}
		for _, r := range sg.Egress {
			nr, err := w.scenarioRule(g, r)
			if err != nil {
				return fmt.Errorf("security group %s egress: %w", g.id, err)
			}
			g.egress = append(g.egress, nr)
		}
		if err := checkRuleQuota(g.ingress, nil); err != nil {
			return fmt.Errorf("security group %s: %s", g.id, err.Message)
		}
	}
	return nil
}

func (w *world) scenarioGroup(sg SecurityGroup) (*secGroup, error) {
	v := w.vpcs[0]
	if sg.VPC != "" {
		if v = w.vpcByID(sg.VPC); v == nil {
			return nil, fmt.Errorf("unknown vpc %q", sg.VPC)
		}
	}
	if sg.Description == "" {
		sg.Description = sg.Name
	}
	if err := checkNewGroup(sg.Name, sg.Description); err != nil {
		return nil, fmt.Errorf("%s", err.Message)
	}
	if w.groupByName(v, sg.Name) != nil {
		return nil, fmt.Errorf("a group named %q already exists in %s", sg.Name, v.id)
	}
	g := &secGroup{id: sg.ID, name: sg.Name, desc: sg.Description, vpc: v, tags: cloneTags(sg.Tags)}
	if g.id == "" {
		g.id = w.newSGID()
	} else if !sgIDRe.MatchString(g.id) {
		return nil, fmt.Errorf("malformed security group ID %q", g.id)
	} else if err := w.claimID(g.id); err != nil {
		return nil, err
	}
	w.addGroup(g)
	return g, nil
}

func (w *world) scenarioRule(g *secGroup, r SecurityGroupRule) (*sgRule, error) {
	proto, ok := normProto(r.Protocol)
	if !ok {
		return nil, fmt.Errorf("unknown protocol %q", r.Protocol)
	}
	from, to := r.FromPort, r.ToPort
	from, to, aerr := normPorts(proto, &from, &to)
	if aerr != nil {
		return nil, fmt.Errorf("%s", aerr.Message)
	}
	if (r.CIDR == "") == (r.Group == "") {
		return nil, fmt.Errorf("a rule needs exactly one of cidr and group")
	}
	if !validRuleDescription(r.Description) {
		return nil, fmt.Errorf("invalid rule description %q", r.Description)
	}
	nr := w.newRule(proto, from, to, netip.Prefix{}, "", r.Description)
	if r.CIDR != "" {
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil {
			return nil, fmt.Errorf("bad cidr %q", r.CIDR)
		}
		nr.cidr = p.Masked()
		return nr, nil
	}
	ref := w.groupByID(r.Group)
	if ref == nil {
		ref = w.groupByName(g.vpc, r.Group)
	}
	if ref == nil || ref.vpc != g.vpc {
		return nil, fmt.Errorf("unknown group %q in %s", r.Group, g.vpc.id)
	}
	nr.group = ref.id
	return nr, nil
}

func (w *world) vpcByID(id string) *vpc {
	for _, v := range w.vpcs {
		if v.id == id {
			return v
		}
	}
	return nil
}

// setupENI gives a new ENI its security groups (the ENI's own list, else
// the instance's, else the cluster's node group in its VPC, else the VPC's
// default group) and its primary-IPv6 setting.
func (w *world) setupENI(e *eni, in Instance, spec ENI) error {
	names := spec.SecurityGroups
	if len(names) == 0 {
		names = in.SecurityGroups
	}
	v := e.subnet.vpc
	switch {
	case len(names) > 0:
		if len(names) > maxGroupsPerENI {
			return fmt.Errorf("%d security groups exceed the limit of %d per network interface", len(names), maxGroupsPerENI)
		}
		for _, n := range names {
			g := w.groupByID(n)
			if g == nil {
				g = w.groupByName(v, n)
			}
			if g == nil || g.vpc != v {
				return fmt.Errorf("unknown security group %q in %s", n, v.id)
			}
			if !slices.Contains(e.attrs.groups, g) {
				e.attrs.groups = append(e.attrs.groups, g)
			}
		}
	case w.sec.nodeGroup != nil && w.sec.nodeGroup.vpc == v:
		e.attrs.groups = []*secGroup{w.sec.nodeGroup}
	default:
		e.attrs.groups = []*secGroup{w.defaultGroup(v)}
	}
	e.attrs.primaryV6 = slices.ContainsFunc(e.v6, func(a v6addr) bool { return a.primary })
	if spec.EnablePrimaryIPv6 {
		if len(e.v6) == 0 {
			return fmt.Errorf("enablePrimaryIpv6 needs an IPv6 address on the ENI")
		}
		e.enablePrimaryV6()
		e.hist[len(e.hist)-1].v6 = slices.Clone(e.v6)
	}
	return nil
}

// enablePrimaryV6 makes the first IPv6 address primary unless one already
// is; it reports whether anything changed.
func (e *eni) enablePrimaryV6() bool {
	e.attrs.primaryV6 = true
	if len(e.v6) == 0 || slices.ContainsFunc(e.v6, func(a v6addr) bool { return a.primary }) {
		return false
	}
	e.v6[0].primary = true
	return true
}

// normProto returns EC2's stored form of an IpProtocol value: tcp, udp,
// icmp and icmpv6 (any case, or their numbers 6, 17, 1, 58), -1, or another
// protocol number 0-255.
func normProto(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "tcp", "6":
		return "tcp", true
	case "udp", "17":
		return "udp", true
	case "icmp", "1":
		return "icmp", true
	case "icmpv6", "58":
		return "icmpv6", true
	case "-1":
		return "-1", true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != s {
		return "", false
	}
	return s, true
}

// hasPorts: the protocol's rules carry a port range or an ICMP type/code.
func hasPorts(proto string) bool {
	switch proto {
	case "tcp", "udp", "icmp", "icmpv6":
		return true
	}
	return false
}

// normPorts checks the port range of a rule (nil = not given) and returns
// what is stored: -1/-1 for protocols without ports.
func normPorts(proto string, from, to *int) (int, int, *apiError) {
	switch proto {
	case "tcp", "udp":
		if from == nil || to == nil {
			return 0, 0, badValue("Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.")
		}
		for _, p := range []int{*from, *to} {
			if p < 0 || p > 65535 {
				return 0, 0, malformedPerm("TCP/UDP port (%d) out of range", p)
			}
		}
		if *from > *to {
			return 0, 0, malformedPerm("Invalid TCP/UDP port range: from port %d is greater than to port %d", *from, *to)
		}
		return *from, *to, nil
	case "icmp", "icmpv6":
		if from == nil && to == nil && proto == "icmpv6" {
			return -1, -1, nil
		}
		if from == nil || to == nil {
			return 0, 0, badValue("Invalid value 'Must specify both from and to ports with ICMP.' for portRange.")
		}
		if *from < -1 || *from > 255 {
			return 0, 0, malformedPerm("ICMP type (%d) out of range", *from)
		}
		if *to < -1 || *to > 255 {
			return 0, 0, malformedPerm("ICMP code (%d) out of range", *to)
		}
		if *from == -1 && *to != -1 {
			return 0, 0, malformedPerm("ICMP code (%d) must be -1 when the ICMP type is -1", *to)
		}
		return *from, *to, nil
	}
	return -1, -1, nil
}

// key identifies a rule for duplicates and revocation: description and ID
// are not part of it.
func (r *sgRule) key() string {
	src := r.group
	if r.cidr.IsValid() {
		src = r.cidr.String()
	}
	return fmt.Sprintf("%s|%d|%d|%s", r.proto, r.from, r.to, src)
}

func (r *sgRule) peer() string {
	if r.group != "" {
		return r.group
	}
	return r.cidr.String()
}

// describe is the rule as AWS words it in InvalidPermission.Duplicate.
func (r *sgRule) describe() string {
	switch r.proto {
	case "-1":
		return fmt.Sprintf("peer: %s, ALL, ALLOW", r.peer())
	case "tcp", "udp":
		return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", r.peer(), strings.ToUpper(r.proto), r.from, r.to)
	case "icmp", "icmpv6":
		return fmt.Sprintf("peer: %s, %s, type: %d, code: %d, ALLOW", r.peer(), strings.ToUpper(r.proto), r.from, r.to)
	}
	return fmt.Sprintf("peer: %s, protocol: %s, ALLOW", r.peer(), r.proto)
}

func (r *sgRule) export() SecurityGroupRule {
	out := SecurityGroupRule{ID: r.id, Protocol: r.proto, FromPort: r.from, ToPort: r.to, Group: r.group, Description: r.desc}
	if r.cidr.IsValid() {
		out.CIDR = r.cidr.String()
	}
	return out
}

func (g *secGroup) export() SecurityGroup {
	out := SecurityGroup{ID: g.id, Name: g.name, Description: g.desc, VPC: g.vpc.id, Tags: maps.Clone(g.tags), Default: g.isDefault,
		Ingress: []SecurityGroupRule{}, Egress: []SecurityGroupRule{}}
	for _, r := range g.ingress {
		out.Ingress = append(out.Ingress, r.export())
	}
	for _, r := range g.egress {
		out.Egress = append(out.Egress, r.export())
	}
	return out
}

// checkRuleQuota applies the rules-per-group quota to rules plus added:
// at most 60 per address family, a group reference counting for both.
func checkRuleQuota(rules, added []*sgRule) *apiError {
	v4, v6 := 0, 0
	for _, r := range append(slices.Clone(rules), added...) {
		switch {
		case !r.cidr.IsValid():
			v4++
			v6++
		case r.cidr.Addr().Is4():
			v4++
		default:
			v6++
		}
	}
	if v4 > maxRulesPerGroup || v6 > maxRulesPerGroup {
		return errf(400, "RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.")
	}
	return nil
}

func malformedPerm(format string, args ...any) *apiError {
	return errf(400, "InvalidPermission.Malformed", format, args...)
}

func validRuleDescription(s string) bool {
	return len(s) <= 255 && sgTextRe.MatchString(s)
}

// checkGroupText validates a group name or description (API_CreateSecurityGroup:
// up to 255 characters of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*).
func checkGroupText(what, s string) *apiError {
	param := map[string]string{"name": "GroupName", "description": "GroupDescription"}[what]
	switch {
	case len(s) > 255:
		return badValue("Value (%s) for parameter %s is invalid. Length exceeds maximum of 255.", s, param)
	case !sgTextRe.MatchString(s):
		return badValue("Value (%s) for parameter %s is invalid. Valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*", s, param)
	}
	return nil
}

// checkNewGroup applies CreateSecurityGroup's name and description rules.
func checkNewGroup(name, desc string) *apiError {
	switch {
	case name == "":
		return missing("GroupName")
	case desc == "":
		return missing("GroupDescription")
	case strings.HasPrefix(strings.ToLower(name), "sg-"):
		return badValue("Group names may not be in the format sg-*.")
	case strings.EqualFold(name, defaultGroupName):
		return errf(400, "InvalidGroup.Reserved", "The name 'default' is reserved, and cannot be used to create a new security group.")
	}
	if err := checkGroupText("name", name); err != nil {
		return err
	}
	return checkGroupText("description", desc)
}

// groupReferenced returns another group whose rule references g.
func (w *world) groupReferenced(g *secGroup) (*secGroup, bool) {
	for _, o := range w.sec.groups {
		if o == g {
			continue
		}
		for _, r := range append(slices.Clone(o.ingress), o.egress...) {
			if r.group == g.id {
				return o, true
			}
		}
	}
	return nil, false
}

// groupInUse reports whether a live ENI uses g.
func (w *world) groupInUse(g *secGroup) bool {
	for _, e := range w.eniOrder {
		if !e.released && slices.Contains(e.attrs.groups, g) {
			return true
		}
	}
	return false
}

// SecurityGroups returns every security group with its rules and tags, in
// creation order.
func (s *Sim) SecurityGroups() []SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.exportGroups()
}

func (w *world) exportGroups() []SecurityGroup {
	out := make([]SecurityGroup, 0, len(w.sec.groups))
	for _, g := range w.sec.groups {
		out = append(out, g.export())
	}
	return out
}

func groupIDs(gs []*secGroup) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.id
	}
	return out
}

func groupNames(gs []*secGroup) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.name
	}
	return out
}

// clusterTagPrefix is Kubernetes' cluster ownership tag key prefix.
const clusterTagPrefix = "kubernetes.io/cluster/"

// clusterSubnets tags the default subnets of a world with a cluster ID
// (one per zone, the nodes' private subnets, role internal-elb) and adds one
// public subnet per zone (role elb, mapPublicIpOnLaunch).
func (w *world) clusterSubnets(id string, private []Subnet) ([]Subnet, error) {
	if id == "" {
		return private, nil
	}
	if len(w.zones) > 8 {
		return nil, fmt.Errorf("clusterID: the default subnets cover at most 8 zones, got %d", len(w.zones))
	}
	base := w.vpcs[0].cidr.Addr().As4()
	out := slices.Clone(private)
	for i := range out {
		out[i].Tags = map[string]string{"Name": id + "-private-" + out[i].Zone,
			"kubernetes.io/role/internal-elb": "1", clusterTagPrefix + id: "owned"}
	}
	for i, z := range w.zones {
		sn := Subnet{Zone: z.name, CIDR: fmt.Sprintf("%d.%d.%d.0/20", base[0], base[1], 128+i*16), MapPublicIPOnLaunch: true,
			Tags: map[string]string{"Name": id + "-public-" + z.name, "kubernetes.io/role/elb": "1", clusterTagPrefix + id: "owned"}}
		if v6 := w.vpcs[0].v6; v6.IsValid() {
			a := v6.Addr().As16()
			a[7] += byte(0x81 + i)
			sn.IPv6CIDR = netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
		}
		out = append(out, sn)
	}
	return out, nil
}

// Filters on groups for the describes of ENIs, instances and subnets, as
// the EC2 API reference lists them.
func init() {
	ids, names := groupIDs, groupNames
	eniFilters["group-id"] = func(_ *world, e *eni, _ time.Time) []string { return ids(e.attrs.groups) }
	eniFilters["group-name"] = func(_ *world, e *eni, _ time.Time) []string { return names(e.attrs.groups) }
	instGroups := func(i *instance, at time.Time) []*secGroup {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		return i.primaryENI().attrs.groups
	}
	eniGroups := func(i *instance, at time.Time) []*secGroup {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		var out []*secGroup
		for _, e := range i.enis {
			out = append(out, e.attrs.groups...)
		}
		return out
	}
	instanceFilters["instance.group-id"] = func(_ *world, i *instance, at time.Time) []string { return ids(instGroups(i, at)) }
	instanceFilters["instance.group-name"] = func(_ *world, i *instance, at time.Time) []string { return names(instGroups(i, at)) }
	instanceFilters["network-interface.group-id"] = func(_ *world, i *instance, at time.Time) []string { return ids(eniGroups(i, at)) }
	instanceFilters["network-interface.group-name"] = func(_ *world, i *instance, at time.Time) []string { return names(eniGroups(i, at)) }
	subnetFilters["map-public-ip-on-launch"] = func(_ *world, s *subnet, _ time.Time) []string {
		return []string{strconv.FormatBool(s.mapPublic)}
	}
}
