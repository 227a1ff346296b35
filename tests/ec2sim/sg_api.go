package ec2sim

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The security-group actions: CreateSecurityGroup, DescribeSecurityGroups,
// DeleteSecurityGroup, AuthorizeSecurityGroupIngress and
// RevokeSecurityGroupIngress. Every emulated VPC is a nondefault VPC, so
// group names are never accepted where AWS takes them only in a default VPC.

// indexes returns the distinct N of the keys prefix.N and prefix.N.…, sorted.
func (p *params) indexes(prefix string) []int {
	var out []int
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if !isIndex(idx) {
			continue
		}
		n, _ := strconv.Atoi(idx)
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// optInt reads an optional integer parameter as a pointer.
func (p *params) optInt(key string) (*int, *apiError) {
	n, ok, err := p.intParam(key)
	if err != nil || !ok {
		return nil, err
	}
	return &n, nil
}

var tagSpecKeys = []string{"TagSpecification.#.ResourceType", "TagSpecification.#.Tag.#.Key", "TagSpecification.#.Tag.#.Value"}

// checkTag applies EC2's tag restrictions (as CreateTags does).
func checkTag(k, v string) *apiError {
	switch {
	case k == "" || len(k) > 128 || len(v) > 256:
		return badValue("Invalid tag key or value: %q", k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return badValue("Tag keys starting with 'aws:' are reserved for internal use")
	}
	return nil
}

// tagSpecs reads TagSpecification.N; resourceType is the only type the
// action tags.
func (p *params) tagSpecs(resourceType string) (map[string]string, *apiError) {
	out := map[string]string{}
	for _, n := range p.indexes("TagSpecification") {
		pre := fmt.Sprintf("TagSpecification.%d.", n)
		if rt := p.get(pre + "ResourceType"); rt != resourceType {
			return nil, badValue("'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for _, m := range p.indexes(pre + "Tag") {
			k, v := p.get(fmt.Sprintf("%sTag.%d.Key", pre, m)), p.get(fmt.Sprintf("%sTag.%d.Value", pre, m))
			if err := checkTag(k, v); err != nil {
				return nil, err
			}
			out[k] = v
		}
	}
	if len(out) > 50 {
		return nil, errf(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags for a resource (50) has been reached.")
	}
	return out, nil
}

// errNoDefaultVPC answers a group name where AWS takes one only in a
// default VPC (errors-overview: VPCIdNotSpecified).
func errNoDefaultVPC() *apiError {
	return errf(http.StatusBadRequest, "VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
}

func groupNotFound(ids []string) *apiError {
	if len(ids) == 1 {
		return errf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist", ids[0])
	}
	return errf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security groups '%s' do not exist", strings.Join(ids, ", "))
}

func malformedGroup(id string) *apiError {
	return errf(http.StatusBadRequest, "InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
}

// lookupGroup resolves GroupId (GroupName alone is a default-VPC feature).
func (w *world) lookupGroup(p *params) (*secGroup, *apiError) {
	id := p.get("GroupId")
	switch {
	case id == "" && p.get("GroupName") != "":
		return nil, errNoDefaultVPC()
	case id == "":
		return nil, missing("GroupId")
	case !sgIDRe.MatchString(id):
		return nil, malformedGroup(id)
	}
	g := w.groupByID(id)
	if g == nil {
		return nil, groupNotFound([]string{id})
	}
	return g, nil
}

func createSecurityGroup(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown(append([]string{"GroupName", "GroupDescription", "VpcId"}, tagSpecKeys...)); err != nil {
		return err
	}
	name, desc := p.get("GroupName"), p.get("GroupDescription")
	if err := checkNewGroup(name, desc); err != nil {
		return err
	}
	vid := p.get("VpcId")
	if vid == "" {
		return errf(http.StatusBadRequest, "VPCIdNotSpecified", "No default VPC for this user")
	}
	if !vpcIDRe.MatchString(vid) {
		return errf(http.StatusBadRequest, "InvalidVpcID.Malformed", "Invalid id: %q", vid)
	}
	v := w.vpcByID(vid)
	if v == nil {
		return notFound("InvalidVpcID.NotFound", "vpc", []string{vid})
	}
	tags, err := p.tagSpecs("security-group")
	if err != nil {
		return err
	}
	if w.groupByName(v, name) != nil {
		return errf(http.StatusBadRequest, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, v.id)
	}
	if len(w.sec.groups) >= maxGroupsPerRegion {
		return errf(http.StatusBadRequest, "SecurityGroupLimitExceeded", "The maximum number of security groups for the region has been reached.")
	}
	// A new group allows all outbound IPv4 traffic and nothing inbound.
	g := &secGroup{id: w.newSGID(), name: name, desc: desc, vpc: v, tags: tags, egress: []*sgRule{w.allTraffic("0.0.0.0/0")}}
	w.addGroup(g)
	x := rc.x
	x.el("groupId", g.id)
	if len(tags) > 0 {
		x.tagSet(tags)
	}
	x.el("securityGroupArn", w.groupARN(g))
	return nil
}

func (w *world) groupARN(g *secGroup) string {
	return "arn:aws:ec2:" + w.region + ":" + w.account + ":security-group/" + g.id
}

func deleteSecurityGroup(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"GroupId", "GroupName"}); err != nil {
		return err
	}
	g, err := w.lookupGroup(p)
	if err != nil {
		return err
	}
	if g.isDefault {
		return errf(http.StatusBadRequest, "CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.id)
	}
	if _, refd := w.groupReferenced(g); refd || w.groupInUse(g) {
		return errf(http.StatusBadRequest, "DependencyViolation", "resource %s has a dependent object", g.id)
	}
	w.sec.groups = slices.DeleteFunc(w.sec.groups, func(o *secGroup) bool { return o == g })
	if w.sec.nodeGroup == g {
		w.sec.nodeGroup = nil
	}
	rc.x.elBool("return", true)
	rc.x.el("groupId", g.id)
	return nil
}

func ruleValues(rules []*sgRule, f func(*sgRule) (string, bool)) []string {
	var out []string
	for _, r := range rules {
		if v, ok := f(r); ok {
			out = append(out, v)
		}
	}
	return out
}

func ruleFilters(prefix string, rules func(*secGroup) []*sgRule) map[string]fieldFunc[*secGroup] {
	fn := func(f func(*sgRule) (string, bool)) fieldFunc[*secGroup] {
		return func(_ *world, g *secGroup, _ time.Time) []string { return ruleValues(rules(g), f) }
	}
	return map[string]fieldFunc[*secGroup]{
		prefix + "cidr": fn(func(r *sgRule) (string, bool) { return r.cidr.String(), r.cidr.IsValid() && r.cidr.Addr().Is4() }),
		prefix + "ipv6-cidr": fn(func(r *sgRule) (string, bool) {
			return r.cidr.String(), r.cidr.IsValid() && r.cidr.Addr().Is6()
		}),
		prefix + "group-id":  fn(func(r *sgRule) (string, bool) { return r.group, r.group != "" }),
		prefix + "protocol":  fn(func(r *sgRule) (string, bool) { return r.proto, true }),
		prefix + "from-port": fn(func(r *sgRule) (string, bool) { return strconv.Itoa(r.from), hasPorts(r.proto) }),
		prefix + "to-port":   fn(func(r *sgRule) (string, bool) { return strconv.Itoa(r.to), hasPorts(r.proto) }),
	}
}

// sgFilters are DescribeSecurityGroups' filters (tags are added by
// compileFilters).
var sgFilters = func() map[string]fieldFunc[*secGroup] {
	m := map[string]fieldFunc[*secGroup]{
		"group-id":    func(_ *world, g *secGroup, _ time.Time) []string { return []string{g.id} },
		"group-name":  func(_ *world, g *secGroup, _ time.Time) []string { return []string{g.name} },
		"vpc-id":      func(_ *world, g *secGroup, _ time.Time) []string { return []string{g.vpc.id} },
		"description": func(_ *world, g *secGroup, _ time.Time) []string { return []string{g.desc} },
		"owner-id":    func(w *world, _ *secGroup, _ time.Time) []string { return []string{w.account} },
	}
	for k, f := range ruleFilters("ip-permission.", func(g *secGroup) []*sgRule { return g.ingress }) {
		m[k] = f
	}
	for k, f := range ruleFilters("egress.ip-permission.", func(g *secGroup) []*sgRule { return g.egress }) {
		m[k] = f
	}
	return m
}()

func describeSecurityGroups(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"GroupId.#", "GroupName.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	if len(p.list("GroupName")) > 0 {
		return errNoDefaultVPC()
	}
	ids := p.list("GroupId")
	var missingIDs []string
	for _, id := range ids {
		if !sgIDRe.MatchString(id) {
			return malformedGroup(id)
		}
		if w.groupByID(id) == nil && !slices.Contains(missingIDs, id) {
			missingIDs = append(missingIDs, id)
		}
	}
	if len(missingIDs) > 0 {
		return groupNotFound(missingIDs)
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, sgFilters, func(g *secGroup) map[string]string { return g.tags })
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeSecurityGroups", 5, 1000, len(ids) > 0, "groupIds")
	if err != nil {
		return err
	}
	out, next := page(w.sec.groups, func(g *secGroup) int { return g.seq }, func(g *secGroup) bool {
		return (len(ids) == 0 || slices.Contains(ids, g.id)) && match(w, g, rc.at)
	}, pg)
	x := rc.x
	if len(out) == 0 {
		x.WriteString("<securityGroupInfo/>")
	} else {
		x.open("securityGroupInfo")
		for _, g := range out {
			w.renderGroup(x, g)
		}
		x.close("securityGroupInfo")
	}
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}

func (w *world) renderGroup(x xw, g *secGroup) {
	x.open("item")
	x.el("ownerId", w.account)
	x.el("groupId", g.id)
	x.el("groupName", g.name)
	x.el("groupDescription", g.desc)
	w.renderPermissions(x, "ipPermissions", g.ingress)
	w.renderPermissions(x, "ipPermissionsEgress", g.egress)
	x.el("vpcId", g.vpc.id)
	x.el("securityGroupArn", w.groupARN(g))
	x.tagSet(g.tags)
	x.close("item")
}

// renderPermissions writes rules as AWS's IpPermissions: one item per
// protocol and port range, in the order first seen, with the sources of its
// rules in groups, ipRanges and ipv6Ranges.
func (w *world) renderPermissions(x xw, set string, rules []*sgRule) {
	if len(rules) == 0 {
		x.WriteString("<" + set + "/>")
		return
	}
	type perm struct {
		proto    string
		from, to int
	}
	var order []perm
	by := map[perm][]*sgRule{}
	for _, r := range rules {
		k := perm{r.proto, r.from, r.to}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	x.open(set)
	for _, k := range order {
		rs := by[k]
		x.open("item")
		x.el("ipProtocol", k.proto)
		if hasPorts(k.proto) {
			x.elInt("fromPort", k.from)
			x.elInt("toPort", k.to)
		}
		writeSet := func(name string, keep func(*sgRule) bool, body func(*sgRule)) {
			var sel []*sgRule
			for _, r := range rs {
				if keep(r) {
					sel = append(sel, r)
				}
			}
			if len(sel) == 0 {
				x.WriteString("<" + name + "/>")
				return
			}
			x.open(name)
			for _, r := range sel {
				x.open("item")
				body(r)
				if r.desc != "" {
					x.el("description", r.desc)
				}
				x.close("item")
			}
			x.close(name)
		}
		writeSet("groups", func(r *sgRule) bool { return r.group != "" }, func(r *sgRule) {
			x.el("userId", w.account)
			x.el("groupId", r.group)
		})
		writeSet("ipRanges", func(r *sgRule) bool { return r.cidr.IsValid() && r.cidr.Addr().Is4() }, func(r *sgRule) {
			x.el("cidrIp", r.cidr.String())
		})
		writeSet("ipv6Ranges", func(r *sgRule) bool { return r.cidr.IsValid() && r.cidr.Addr().Is6() }, func(r *sgRule) {
			x.el("cidrIpv6", r.cidr.String())
		})
		x.WriteString("<prefixListIds/>")
		x.close("item")
	}
	x.close(set)
}

// permSpec is one IpPermissions.N of a request (or the legacy top-level
// CidrIp/IpProtocol/FromPort/ToPort form).
type permSpec struct {
	n           int // 0 for the top-level form
	proto       string
	hasProto    bool
	from, to    *int
	v4, v6      []srcSpec
	groups      []pairSpec
	prefixLists []string
}

type srcSpec struct{ cidr, desc string }

type pairSpec struct {
	groupID, groupName, userID, vpcID, peering, desc string
}

var permKeys = []string{
	"IpPermissions.#.IpProtocol", "IpPermissions.#.FromPort", "IpPermissions.#.ToPort",
	"IpPermissions.#.IpRanges.#.CidrIp", "IpPermissions.#.IpRanges.#.Description",
	"IpPermissions.#.Ipv6Ranges.#.CidrIpv6", "IpPermissions.#.Ipv6Ranges.#.Description",
	"IpPermissions.#.Groups.#.GroupId", "IpPermissions.#.Groups.#.GroupName", "IpPermissions.#.Groups.#.UserId",
	"IpPermissions.#.Groups.#.Description", "IpPermissions.#.Groups.#.VpcId", "IpPermissions.#.Groups.#.VpcPeeringConnectionId",
	"IpPermissions.#.Groups.#.PeeringStatus",
	"IpPermissions.#.PrefixListIds.#.PrefixListId", "IpPermissions.#.PrefixListIds.#.Description",
	"GroupId", "GroupName", "CidrIp", "IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId",
}

// permissions reads IpPermissions.N, or the legacy top-level fields.
func (p *params) permissions() ([]permSpec, *apiError) {
	var out []permSpec
	for _, n := range p.indexes("IpPermissions") {
		pre := fmt.Sprintf("IpPermissions.%d.", n)
		ps := permSpec{n: n, proto: p.get(pre + "IpProtocol"), hasProto: p.has(pre + "IpProtocol")}
		var err *apiError
		if ps.from, err = p.optInt(pre + "FromPort"); err != nil {
			return nil, err
		}
		if ps.to, err = p.optInt(pre + "ToPort"); err != nil {
			return nil, err
		}
		for _, m := range p.indexes(pre + "IpRanges") {
			q := fmt.Sprintf("%sIpRanges.%d.", pre, m)
			ps.v4 = append(ps.v4, srcSpec{p.get(q + "CidrIp"), p.get(q + "Description")})
		}
		for _, m := range p.indexes(pre + "Ipv6Ranges") {
			q := fmt.Sprintf("%sIpv6Ranges.%d.", pre, m)
			ps.v6 = append(ps.v6, srcSpec{p.get(q + "CidrIpv6"), p.get(q + "Description")})
		}
		for _, m := range p.indexes(pre + "Groups") {
			q := fmt.Sprintf("%sGroups.%d.", pre, m)
			ps.groups = append(ps.groups, pairSpec{groupID: p.get(q + "GroupId"), groupName: p.get(q + "GroupName"),
				userID: p.get(q + "UserId"), vpcID: p.get(q + "VpcId"), peering: p.get(q + "VpcPeeringConnectionId"), desc: p.get(q + "Description")})
		}
		for _, m := range p.indexes(pre + "PrefixListIds") {
			ps.prefixLists = append(ps.prefixLists, p.get(fmt.Sprintf("%sPrefixListIds.%d.PrefixListId", pre, m)))
		}
		out = append(out, ps)
	}
	legacy := false
	for _, k := range []string{"CidrIp", "IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId"} {
		legacy = legacy || p.has(k)
	}
	switch {
	case legacy && len(out) > 0:
		return nil, badCombination("The parameter IpPermissions cannot be used with CidrIp, IpProtocol, FromPort, ToPort or SourceSecurityGroupName.")
	case p.has("SourceSecurityGroupName") || p.has("SourceSecurityGroupOwnerId"):
		return nil, errNoDefaultVPC()
	case legacy:
		ps := permSpec{proto: p.get("IpProtocol"), hasProto: p.has("IpProtocol")}
		var err *apiError
		if ps.from, err = p.optInt("FromPort"); err != nil {
			return nil, err
		}
		if ps.to, err = p.optInt("ToPort"); err != nil {
			return nil, err
		}
		if p.has("CidrIp") {
			ps.v4 = []srcSpec{{cidr: p.get("CidrIp")}}
		}
		out = append(out, ps)
	}
	return out, nil
}

func parseCIDR(s string, v4 bool) (netip.Prefix, *apiError) {
	pf, err := netip.ParsePrefix(s)
	if err != nil || pf.Addr().Is4() != v4 || pf.Addr().Is4In6() || pf.Addr().Zone() != "" {
		return netip.Prefix{}, badValue("CIDR block %s is malformed", s)
	}
	return pf.Masked(), nil
}

// candidateRules turns a request's permissions into rules of g (without
// IDs), checking protocols, ports, sources and descriptions.
func (w *world) candidateRules(g *secGroup, perms []permSpec) ([]*sgRule, *apiError) {
	if len(perms) == 0 {
		return nil, missing("IpPermissions")
	}
	var out []*sgRule
	for _, ps := range perms {
		if !ps.hasProto || ps.proto == "" {
			if ps.n == 0 {
				return nil, missing("IpProtocol")
			}
			return nil, missing(fmt.Sprintf("IpPermissions.%d.IpProtocol", ps.n))
		}
		proto, ok := normProto(ps.proto)
		if !ok {
			return nil, badValue("Invalid value '%s' for IP protocol. Unknown protocol.", ps.proto)
		}
		from, to, aerr := normPorts(proto, ps.from, ps.to)
		if aerr != nil {
			return nil, aerr
		}
		if len(ps.v4)+len(ps.v6)+len(ps.groups)+len(ps.prefixLists) == 0 {
			return nil, missing("Missing source specification: include source security group or CIDR information")
		}
		if len(ps.prefixLists) > 0 {
			return nil, notFound("InvalidPrefixListID.NotFound", "prefix list", ps.prefixLists)
		}
		add := func(cidr netip.Prefix, group, desc string) *apiError {
			if !validRuleDescription(desc) {
				return badValue("Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")
			}
			out = append(out, &sgRule{proto: proto, from: from, to: to, cidr: cidr, group: group, desc: desc})
			return nil
		}
		for _, s := range ps.v4 {
			pf, err := parseCIDR(s.cidr, true)
			if err != nil {
				return nil, err
			}
			if err := add(pf, "", s.desc); err != nil {
				return nil, err
			}
		}
		for _, s := range ps.v6 {
			pf, err := parseCIDR(s.cidr, false)
			if err != nil {
				return nil, err
			}
			if err := add(pf, "", s.desc); err != nil {
				return nil, err
			}
		}
		for _, pr := range ps.groups {
			ref, err := w.pairGroup(g, pr)
			if err != nil {
				return nil, err
			}
			if err := add(netip.Prefix{}, ref.id, pr.desc); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// pairGroup resolves a UserIdGroupPair: a group of the same account and
// VPC, by ID ("You can't specify a security group that is in a different
// ... VPC than the request", errors-overview InvalidGroup.NotFound).
func (w *world) pairGroup(g *secGroup, pr pairSpec) (*secGroup, *apiError) {
	switch {
	case pr.groupID == "" && pr.groupName != "":
		return nil, errNoDefaultVPC()
	case pr.groupID == "":
		return nil, missing("GroupId")
	case !sgIDRe.MatchString(pr.groupID):
		return nil, malformedGroup(pr.groupID)
	case pr.peering != "":
		return nil, notFound("InvalidVpcPeeringConnectionID.NotFound", "vpc peering connection", []string{pr.peering})
	}
	ref := w.groupByID(pr.groupID)
	if ref == nil || ref.vpc != g.vpc || (pr.userID != "" && pr.userID != w.account) || (pr.vpcID != "" && pr.vpcID != g.vpc.id) {
		return nil, errf(http.StatusBadRequest, "InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", pr.groupID, g.vpc.id)
	}
	return ref, nil
}

func authorizeSecurityGroupIngress(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown(append(slices.Clone(permKeys), tagSpecKeys...)); err != nil {
		return err
	}
	g, err := w.lookupGroup(p)
	if err != nil {
		return err
	}
	perms, err := p.permissions()
	if err != nil {
		return err
	}
	cands, err := w.candidateRules(g, perms)
	if err != nil {
		return err
	}
	tags, err := p.tagSpecs("security-group-rule")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, r := range cands {
		if seen[r.key()] {
			return badValue("The same permission must not appear multiple times")
		}
		seen[r.key()] = true
	}
	for _, r := range cands {
		if slices.ContainsFunc(g.ingress, func(o *sgRule) bool { return o.key() == r.key() }) {
			return errf(http.StatusBadRequest, "InvalidPermission.Duplicate", "the specified rule %q already exists", r.describe())
		}
	}
	if err := checkRuleQuota(g.ingress, cands); err != nil {
		return err
	}
	for _, r := range cands {
		r.id = w.newRuleID()
		r.tags = cloneTags(tags)
	}
	g.ingress = append(g.ingress, cands...)
	x := rc.x
	x.elBool("return", true)
	x.open("securityGroupRuleSet")
	for _, r := range cands {
		x.open("item")
		w.ruleFields(x, g, r)
		x.el("groupOwnerId", w.account)
		if r.group != "" {
			x.open("referencedGroupInfo")
			x.el("groupId", r.group)
			x.el("userId", w.account)
			x.close("referencedGroupInfo")
		}
		x.tagSet(r.tags)
		x.close("item")
	}
	x.close("securityGroupRuleSet")
	return nil
}

// ruleFields writes the fields SecurityGroupRule and RevokedSecurityGroupRule
// share.
func (w *world) ruleFields(x xw, g *secGroup, r *sgRule) {
	x.el("securityGroupRuleId", r.id)
	x.el("groupId", g.id)
	x.elBool("isEgress", slices.Contains(g.egress, r))
	x.el("ipProtocol", r.proto)
	x.elInt("fromPort", r.from)
	x.elInt("toPort", r.to)
	switch {
	case r.cidr.IsValid() && r.cidr.Addr().Is4():
		x.el("cidrIpv4", r.cidr.String())
	case r.cidr.IsValid():
		x.el("cidrIpv6", r.cidr.String())
	}
	if r.desc != "" {
		x.el("description", r.desc)
	}
}

func revokeSecurityGroupIngress(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown(append(slices.Clone(permKeys), "SecurityGroupRuleId.#")); err != nil {
		return err
	}
	g, err := w.lookupGroup(p)
	if err != nil {
		return err
	}
	perms, err := p.permissions()
	if err != nil {
		return err
	}
	ruleIDs := p.list("SecurityGroupRuleId")
	var gone []*sgRule
	switch {
	case len(ruleIDs) > 0 && len(perms) > 0:
		return badCombination("The parameter SecurityGroupRuleIds cannot be used with IpPermissions.")
	case len(ruleIDs) > 0:
		var unknown []string
		for _, id := range ruleIDs {
			if !sgrIDRe.MatchString(id) {
				return errf(http.StatusBadRequest, "InvalidSecurityGroupRuleId.Malformed", "Invalid id: %q (expecting \"sgr-...\")", id)
			}
			i := slices.IndexFunc(g.ingress, func(r *sgRule) bool { return r.id == id })
			switch {
			case i < 0:
				unknown = append(unknown, id)
			case !slices.Contains(gone, g.ingress[i]):
				gone = append(gone, g.ingress[i])
			}
		}
		if len(unknown) > 0 {
			return notFound("InvalidSecurityGroupRuleId.NotFound", "security group rule", unknown)
		}
	default:
		cands, err := w.candidateRules(g, perms)
		if err != nil {
			return err
		}
		// A nondefault VPC: a rule that does not exist fails the whole call
		// (API_RevokeSecurityGroupIngress).
		for _, c := range cands {
			i := slices.IndexFunc(g.ingress, func(r *sgRule) bool { return r.key() == c.key() })
			if i < 0 {
				return errf(http.StatusBadRequest, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
			}
			if !slices.Contains(gone, g.ingress[i]) {
				gone = append(gone, g.ingress[i])
			}
		}
	}
	x := rc.x
	x.elBool("return", true)
	x.open("revokedSecurityGroupRuleSet")
	for _, r := range gone {
		x.open("item")
		w.ruleFields(x, g, r)
		if r.group != "" {
			x.el("referencedGroupId", r.group)
		}
		x.close("item")
	}
	x.close("revokedSecurityGroupRuleSet")
	g.ingress = slices.DeleteFunc(g.ingress, func(r *sgRule) bool { return slices.Contains(gone, r) })
	return nil
}
