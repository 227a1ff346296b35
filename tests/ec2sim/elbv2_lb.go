package ec2sim

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// lbAttrOrder lists the Network Load Balancer attributes in the order
// DescribeLoadBalancerAttributes returns them.
var lbAttrOrder = []string{
	"access_logs.s3.enabled", "access_logs.s3.bucket", "access_logs.s3.prefix",
	"deletion_protection.enabled", "ipv6.deny_all_igw_traffic", "load_balancing.cross_zone.enabled",
	"dns_record.client_routing_policy", "zonal_shift.config.enabled", "secondary_ips.auto_assigned.per_subnet",
}

func defaultLBAttrs(scheme string) map[string]string {
	return map[string]string{
		"access_logs.s3.enabled": "false", "access_logs.s3.bucket": "", "access_logs.s3.prefix": "",
		"deletion_protection.enabled": "false", "ipv6.deny_all_igw_traffic": strconv.FormatBool(scheme == "internal"),
		"load_balancing.cross_zone.enabled": "false", "dns_record.client_routing_policy": "any_availability_zone",
		"zonal_shift.config.enabled": "false", "secondary_ips.auto_assigned.per_subnet": "0",
	}
}

// parseMappings reads Subnets.member.N or SubnetMappings.member.N and
// checks them against AWS's rules for a load balancer of this scheme and
// IP address type.
func (c *elbCtx) parseMappings(p *params, scheme, ipType string) ([]elbMapping, *vpc, *apiError) {
	ids := p.list("Subnets.member")
	idx := p.members("SubnetMappings")
	if len(ids) > 0 && len(idx) > 0 {
		return nil, nil, validation("You must specify either subnets or subnet mappings, not both")
	}
	var ms []elbMapping
	for _, id := range ids {
		sn := c.w.subnetByID(id)
		if sn == nil {
			return nil, nil, elbErrf("SubnetNotFound", "The subnet ID '%s' is not valid", id)
		}
		ms = append(ms, elbMapping{subnet: sn})
	}
	for _, n := range idx {
		id, _ := p.field("SubnetMappings", n, "SubnetId")
		if id == "" {
			return nil, nil, validation("A subnet ID must be specified in each subnet mapping")
		}
		sn := c.w.subnetByID(id)
		if sn == nil {
			return nil, nil, elbErrf("SubnetNotFound", "The subnet ID '%s' is not valid", id)
		}
		m := elbMapping{subnet: sn}
		m.allocation, _ = p.field("SubnetMappings", n, "AllocationId")
		m.privIPv4, _ = p.field("SubnetMappings", n, "PrivateIPv4Address")
		m.ipv6, _ = p.field("SubnetMappings", n, "IPv6Address")
		if m.allocation != "" && scheme == "internal" {
			return nil, nil, validation("You cannot specify Elastic IP addresses for internal load balancers")
		}
		if m.privIPv4 != "" {
			a, err := netip.ParseAddr(m.privIPv4)
			if scheme != "internal" {
				return nil, nil, validation("You can specify a private IPv4 address only for internal load balancers")
			}
			if err != nil || !a.Is4() || !sn.cidr.IsValid() || !sn.cidr.Contains(a) {
				return nil, nil, validation("The private IPv4 address '%s' is not within the CIDR block of subnet '%s'", m.privIPv4, id)
			}
		}
		if m.ipv6 != "" {
			a, err := netip.ParseAddr(m.ipv6)
			if ipType != "dualstack" {
				return nil, nil, validation("You can specify an IPv6 address only for dualstack load balancers")
			}
			if err != nil || !a.Is6() || a.Is4In6() || !sn.v6.IsValid() || !sn.v6.Contains(a) {
				return nil, nil, validation("The IPv6 address '%s' is not within the IPv6 CIDR block of subnet '%s'", m.ipv6, id)
			}
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, nil, validation("At least one subnet must be specified")
	}
	v := ms[0].subnet.vpc
	zones := map[*zone]bool{}
	for _, m := range ms {
		if m.subnet.vpc != v {
			return nil, nil, elbErrf("InvalidConfigurationRequest", "The subnets '%s' and '%s' are in different VPCs", ms[0].subnet.id, m.subnet.id)
		}
		if zones[m.subnet.zone] {
			return nil, nil, elbErrf("InvalidConfigurationRequest", "A load balancer cannot be attached to multiple subnets in the same Availability Zone")
		}
		zones[m.subnet.zone] = true
		if m.subnet.native {
			return nil, nil, validation("Subnet '%s' has no IPv4 CIDR block; a Network Load Balancer of IP address type '%s' needs one", m.subnet.id, ipType)
		}
	}
	if ipType == "dualstack" {
		for _, m := range ms {
			if !m.subnet.v6.IsValid() {
				return nil, nil, validation("You must specify subnets with an associated IPv6 CIDR block.")
			}
		}
	}
	return ms, v, nil
}

func checkIPType(v string) *apiError {
	switch v {
	case "ipv4", "dualstack":
		return nil
	case "dualstack-without-public-ipv4":
		return validation("IP address type 'dualstack-without-public-ipv4' is not supported by Network Load Balancers")
	}
	return validation("The IP address type '%s' is not valid; valid values are 'ipv4' and 'dualstack'", v)
}

func checkNAT(v, ipType string) *apiError {
	switch v {
	case "", "off":
		return nil
	case "on":
		if ipType != "dualstack" {
			return validation("EnablePrefixForIpv6SourceNat can be 'on' only for dualstack load balancers")
		}
		return nil
	}
	return validation("The value '%s' of EnablePrefixForIpv6SourceNat is not valid; valid values are 'on' and 'off'", v)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mappingIDs(ms []elbMapping) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.subnet.id
	}
	return out
}

func createLoadBalancer(c *elbCtx, p *params) *apiError {
	name := p.get("Name")
	if err := checkELBName("load balancer", name, true); err != nil {
		return err
	}
	typ := p.get("Type")
	if typ == "" {
		typ = "application"
	}
	if typ != "network" {
		return validation("ec2sim emulates only Network Load Balancers: Type must be 'network', not '%s'", typ)
	}
	if p.has("CustomerOwnedIpv4Pool") {
		return validation("A customer-owned IPv4 pool can be used only by Application Load Balancers on Outposts")
	}
	scheme := p.get("Scheme")
	if scheme == "" {
		scheme = "internet-facing"
	}
	if scheme != "internet-facing" && scheme != "internal" {
		return validation("The scheme '%s' is not valid; valid values are 'internet-facing' and 'internal'", scheme)
	}
	ipType := p.get("IpAddressType")
	if ipType == "" {
		ipType = "ipv4"
	}
	if err := checkIPType(ipType); err != nil {
		return err
	}
	nat := p.get("EnablePrefixForIpv6SourceNat")
	if err := checkNAT(nat, ipType); err != nil {
		return err
	}
	ms, v, err := c.parseMappings(p, scheme, ipType)
	if err != nil {
		return err
	}
	sgs := p.list("SecurityGroups.member")
	for _, sg := range sgs {
		if g := c.w.groupByID(sg); g == nil || g.vpc != v {
			return elbErrf("InvalidSecurityGroup", "Security group '%s' does not exist in VPC '%s'", sg, v.id)
		}
	}
	tags, err := p.elbTags()
	if err != nil {
		return err
	}
	if nat == "" && ipType == "dualstack" {
		nat = "off"
	}
	for _, lb := range c.st.lbs {
		if lb.name != name {
			continue
		}
		if lb.scheme == scheme && lb.ipType == ipType && lb.natIPv6 == nat && sameSet(mappingIDs(lb.mappings), mappingIDs(ms)) && sameSet(lb.sgs, sgs) {
			c.x.open("LoadBalancers")
			c.renderLB(lb)
			c.x.close("LoadBalancers")
			return nil
		}
		return elbErrf("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", name)
	}
	id := c.st.newHexID(c.w, "elb-lb-")
	lb := &elbLB{seq: c.st.seq, id: id, name: name, scheme: scheme, ipType: ipType, natIPv6: nat, vpc: v, mappings: ms, sgs: sgs,
		created: c.now, tags: map[string]string{}, attrs: defaultLBAttrs(scheme)}
	lb.arn = c.w.elbARN("loadbalancer/net/" + name + "/" + id)
	if err := applyTags(lb.tags, tags); err != nil {
		return err
	}
	c.st.lbs = append(c.st.lbs, lb)
	c.st.lbByARN[lb.arn] = lb
	c.x.open("LoadBalancers")
	c.renderLBState(lb, "provisioning")
	c.x.close("LoadBalancers")
	return nil
}

func describeLoadBalancers(c *elbCtx, p *params) *apiError {
	arns, names := p.list("LoadBalancerArns.member"), p.list("Names.member")
	if len(arns) > 0 && len(names) > 0 {
		return validation("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	if len(arns) > 20 {
		return validation("1 validation error detected: Value at 'loadBalancerArns' failed to satisfy constraint: Member must have length less than or equal to 20")
	}
	pg, err := p.elbPaging("DescribeLoadBalancers")
	if err != nil {
		return err
	}
	want := map[*elbLB]bool{}
	for _, arn := range arns {
		lb, err := c.st.lookupLB(arn)
		if err != nil {
			return err
		}
		want[lb] = true
	}
	var missing []string
	for _, n := range names {
		found := false
		for _, lb := range c.st.lbs {
			if lb.name == n {
				want[lb], found = true, true
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return elbErrf("LoadBalancerNotFound", "Load balancers '[%s]' not found", strings.Join(missing, ", "))
	}
	all := len(arns) == 0 && len(names) == 0
	items, tok := page(c.st.lbs, func(lb *elbLB) int { return lb.seq }, func(lb *elbLB) bool { return all || want[lb] }, pg)
	c.x.open("LoadBalancers")
	for _, lb := range items {
		c.renderLB(lb)
	}
	c.x.close("LoadBalancers")
	c.nextMarker(tok)
	return nil
}

func deleteLoadBalancer(c *elbCtx, p *params) *apiError {
	arn := p.get("LoadBalancerArn")
	lb, err := c.st.lookupLB(arn)
	if err != nil {
		if err.Code == "LoadBalancerNotFound" {
			return nil // AWS: "If the load balancer does not exist or has already been deleted, the call succeeds."
		}
		return err
	}
	if lb.attrs["deletion_protection.enabled"] == "true" {
		return elbErrf("OperationNotPermitted", "Load balancer '%s' cannot be deleted because deletion protection is enabled", arn)
	}
	c.st.removeLB(lb)
	return nil
}

// checkIPv6TGs refuses an ipv4 load balancer that forwards to an IPv6
// target group.
func (c *elbCtx) checkIPv6TGs(lb *elbLB, ipType string) *apiError {
	if ipType == "dualstack" {
		return nil
	}
	for _, tg := range c.st.tgsOf(lb) {
		if tg.ipType == "ipv6" {
			return elbErrf("InvalidConfigurationRequest", "You cannot set the IP address type to '%s' while the load balancer forwards to the IPv6 target group '%s'", ipType, tg.arn)
		}
	}
	return nil
}

func setIPAddressType(c *elbCtx, p *params) *apiError {
	lb, err := c.st.lookupLB(p.get("LoadBalancerArn"))
	if err != nil {
		return err
	}
	ipType := p.get("IpAddressType")
	if err := checkIPType(ipType); err != nil {
		return err
	}
	if ipType == "dualstack" {
		for _, m := range lb.mappings {
			if !m.subnet.v6.IsValid() {
				return validation("You must specify subnets with an associated IPv6 CIDR block.")
			}
		}
	}
	if err := c.checkIPv6TGs(lb, ipType); err != nil {
		return err
	}
	if ipType == "ipv4" && lb.natIPv6 == "on" {
		return validation("EnablePrefixForIpv6SourceNat can be 'on' only for dualstack load balancers")
	}
	if ipType != "dualstack" {
		lb.natIPv6 = ""
		for i := range lb.mappings {
			lb.mappings[i].ipv6 = ""
		}
	} else if lb.natIPv6 == "" {
		lb.natIPv6 = "off"
	}
	lb.ipType = ipType
	c.x.el("IpAddressType", ipType)
	return nil
}

func setSubnets(c *elbCtx, p *params) *apiError {
	lb, err := c.st.lookupLB(p.get("LoadBalancerArn"))
	if err != nil {
		return err
	}
	ipType := lb.ipType
	if p.has("IpAddressType") {
		ipType = p.get("IpAddressType")
		if err := checkIPType(ipType); err != nil {
			return err
		}
	}
	nat := lb.natIPv6
	if p.has("EnablePrefixForIpv6SourceNat") {
		nat = p.get("EnablePrefixForIpv6SourceNat")
	}
	if ipType != "dualstack" && nat == "off" {
		nat = ""
	}
	if err := checkNAT(nat, ipType); err != nil {
		return err
	}
	ms, v, err := c.parseMappings(p, lb.scheme, ipType)
	if err != nil {
		return err
	}
	if v != lb.vpc {
		return elbErrf("InvalidConfigurationRequest", "The subnets must be in the VPC '%s' of the load balancer", lb.vpc.id)
	}
	if err := c.checkIPv6TGs(lb, ipType); err != nil {
		return err
	}
	if ipType == "dualstack" && nat == "" {
		nat = "off"
	}
	lb.mappings, lb.ipType, lb.natIPv6 = ms, ipType, nat
	c.renderZones(lb)
	c.x.el("IpAddressType", lb.ipType)
	if lb.natIPv6 != "" {
		c.x.el("EnablePrefixForIpv6SourceNat", lb.natIPv6)
	}
	return nil
}

func describeLoadBalancerAttributes(c *elbCtx, p *params) *apiError {
	lb, err := c.st.lookupLB(p.get("LoadBalancerArn"))
	if err != nil {
		return err
	}
	c.renderAttrs(lbAttrOrder, lb.attrs)
	return nil
}

// attrKV parses Attributes.member.N.{Key,Value}.
func (p *params) attrKV() ([][2]string, *apiError) {
	var out [][2]string
	for _, n := range p.members("Attributes") {
		k, _ := p.field("Attributes", n, "Key")
		v, _ := p.field("Attributes", n, "Value")
		if k == "" {
			return nil, validation("An attribute key must be specified")
		}
		out = append(out, [2]string{k, v})
	}
	if len(out) == 0 {
		return nil, validation("At least one attribute must be specified")
	}
	return out, nil
}

func isBoolString(v string) bool { return v == "true" || v == "false" }

func modifyLoadBalancerAttributes(c *elbCtx, p *params) *apiError {
	lb, err := c.st.lookupLB(p.get("LoadBalancerArn"))
	if err != nil {
		return err
	}
	kvs, err := p.attrKV()
	if err != nil {
		return err
	}
	next := make(map[string]string, len(lb.attrs))
	for k, v := range lb.attrs {
		next[k] = v
	}
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		bad := false
		switch k {
		case "access_logs.s3.enabled", "deletion_protection.enabled", "ipv6.deny_all_igw_traffic",
			"load_balancing.cross_zone.enabled", "zonal_shift.config.enabled":
			bad = !isBoolString(v)
		case "access_logs.s3.bucket", "access_logs.s3.prefix":
		case "dns_record.client_routing_policy":
			bad = !slices.Contains([]string{"availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"}, v)
		case "secondary_ips.auto_assigned.per_subnet":
			n, err := strconv.Atoi(v)
			old, _ := strconv.Atoi(lb.attrs[k])
			bad = err != nil || n < 0 || n > 7 || n < old
		default:
			return validation("Load balancer attribute key '%s' is not recognized", k)
		}
		if bad {
			return validation("Load balancer attribute value '%s' is not valid for load balancer attribute key '%s'", v, k)
		}
		next[k] = v
	}
	if next["access_logs.s3.enabled"] == "true" && next["access_logs.s3.bucket"] == "" {
		return validation("The value of 'access_logs.s3.bucket' cannot be empty when access logs are enabled")
	}
	lb.attrs = next
	c.renderAttrs(lbAttrOrder, lb.attrs)
	return nil
}

func (c *elbCtx) renderAttrs(order []string, attrs map[string]string) {
	c.x.open("Attributes")
	for _, k := range order {
		c.x.open("member")
		c.x.el("Key", k)
		c.x.el("Value", attrs[k])
		c.x.close("member")
	}
	c.x.close("Attributes")
}

func (c *elbCtx) renderLB(lb *elbLB) { c.renderLBState(lb, lb.state(c.st, c.now)) }

func (c *elbCtx) renderLBState(lb *elbLB, state string) {
	x := c.x
	x.open("member")
	x.el("LoadBalancerArn", lb.arn)
	x.el("DNSName", lb.dnsName(c.w))
	x.el("CanonicalHostedZoneId", c.w.nlbHostedZone())
	x.elTime("CreatedTime", lb.created)
	x.el("LoadBalancerName", lb.name)
	x.el("Scheme", lb.scheme)
	x.el("VpcId", lb.vpc.id)
	x.open("State")
	x.el("Code", state)
	x.close("State")
	x.el("Type", "network")
	c.renderZones(lb)
	if len(lb.sgs) > 0 {
		members(x, "SecurityGroups", lb.sgs)
	}
	x.el("IpAddressType", lb.ipType)
	if lb.natIPv6 != "" {
		x.el("EnablePrefixForIpv6SourceNat", lb.natIPv6)
	}
	x.close("member")
}

func (c *elbCtx) renderZones(lb *elbLB) {
	x := c.x
	x.open("AvailabilityZones")
	for _, m := range lb.mappings {
		x.open("member")
		x.el("ZoneName", m.subnet.zone.name)
		x.el("SubnetId", m.subnet.id)
		if m.allocation == "" && m.privIPv4 == "" && m.ipv6 == "" {
			x.WriteString("<LoadBalancerAddresses/>")
		} else {
			x.open("LoadBalancerAddresses")
			x.open("member")
			if m.allocation != "" {
				x.el("AllocationId", m.allocation)
			}
			if m.privIPv4 != "" {
				x.el("PrivateIPv4Address", m.privIPv4)
			}
			if m.ipv6 != "" {
				x.el("IPv6Address", m.ipv6)
			}
			x.close("member")
			x.close("LoadBalancerAddresses")
		}
		x.close("member")
	}
	x.close("AvailabilityZones")
}

// members writes <name><member>v</member>…</name>, or <name/> when empty.
func members(x xw, name string, vals []string) {
	if len(vals) == 0 {
		x.WriteString("<" + name + "/>")
		return
	}
	x.open(name)
	for _, v := range vals {
		x.el("member", v)
	}
	x.close(name)
}
