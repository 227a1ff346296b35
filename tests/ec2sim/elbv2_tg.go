package ec2sim

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tgAttrOrder lists the Network Load Balancer target group attributes in
// the order DescribeTargetGroupAttributes returns them.
var tgAttrOrder = []string{
	"deregistration_delay.timeout_seconds",
	"deregistration_delay.connection_termination.enabled",
	"preserve_client_ip.enabled",
	"proxy_protocol_v2.enabled",
	"stickiness.enabled",
	"stickiness.type",
	"load_balancing.cross_zone.enabled",
	"target_health_state.unhealthy.connection_termination.enabled",
	"target_health_state.unhealthy.draining_interval_seconds",
	"target_group_health.dns_failover.minimum_healthy_targets.count",
	"target_group_health.dns_failover.minimum_healthy_targets.percentage",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
}

// defaultTGAttrs are AWS's documented defaults for a Network Load Balancer
// target group (TargetGroupAttribute in the API reference).
func defaultTGAttrs(protocol, targetType string) map[string]string {
	udp := protocol == "UDP" || protocol == "TCP_UDP"
	return map[string]string{
		"deregistration_delay.timeout_seconds":                                           "300",
		"deregistration_delay.connection_termination.enabled":                            strconv.FormatBool(udp),
		"preserve_client_ip.enabled":                                                     strconv.FormatBool(!(targetType == "ip" && (protocol == "TCP" || protocol == "TLS"))),
		"proxy_protocol_v2.enabled":                                                      "false",
		"stickiness.enabled":                                                             "false",
		"stickiness.type":                                                                "source_ip",
		"load_balancing.cross_zone.enabled":                                              "use_load_balancer_configuration",
		"target_health_state.unhealthy.connection_termination.enabled":                   "true",
		"target_health_state.unhealthy.draining_interval_seconds":                        "0",
		"target_group_health.dns_failover.minimum_healthy_targets.count":                 "1",
		"target_group_health.dns_failover.minimum_healthy_targets.percentage":            "off",
		"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count":      "1",
		"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
	}
}

var nlbProtocols = []string{"TCP", "TLS", "UDP", "TCP_UDP"}

var httpCodeRe = regexp.MustCompile(`^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$`)

// parseHealth applies the health check parameters of p to h.
func parseHealth(p *params, h elbHealth) (elbHealth, *apiError) {
	if on, ok, err := p.elbBool("HealthCheckEnabled"); err != nil {
		return h, err
	} else if ok && !on {
		return h, validation("Health checks cannot be disabled for target groups with target type 'instance' or 'ip'")
	}
	if p.has("HealthCheckProtocol") {
		proto := p.get("HealthCheckProtocol")
		if !slices.Contains([]string{"TCP", "HTTP", "HTTPS"}, proto) {
			return h, validation("Health check protocol '%s' is not supported; Network Load Balancer target groups support TCP, HTTP and HTTPS health checks", proto)
		}
		if proto != h.protocol {
			if proto == "TCP" {
				h.path, h.matcher = "", ""
			} else if h.protocol == "TCP" {
				h.path, h.matcher = "/", "200-399"
			}
		}
		h.protocol = proto
	}
	if p.has("HealthCheckPort") {
		port := p.get("HealthCheckPort")
		if port != "traffic-port" {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				return h, validation("Health check port '%s' must be 'traffic-port' or a port between 1 and 65535", port)
			}
		}
		h.port = port
	}
	for _, f := range []struct {
		key    string
		lo, hi int
		dst    *int
	}{
		{"HealthCheckIntervalSeconds", 5, 300, &h.interval},
		{"HealthCheckTimeoutSeconds", 2, 120, &h.timeout},
		{"HealthyThresholdCount", 2, 10, &h.healthy},
		{"UnhealthyThresholdCount", 2, 10, &h.unheal},
	} {
		n, ok, err := p.elbInt(f.key, f.lo, f.hi)
		if err != nil {
			return h, err
		}
		if ok {
			*f.dst = n
		}
	}
	if p.has("HealthCheckPath") {
		path := p.get("HealthCheckPath")
		if h.protocol == "TCP" {
			return h, validation("A health check path can be specified only for HTTP and HTTPS health checks")
		}
		if !strings.HasPrefix(path, "/") || len(path) > 1024 {
			return h, validation("Health check path '%s' must begin with '/' and be at most 1024 characters long", path)
		}
		h.path = path
	}
	if p.has("Matcher.GrpcCode") {
		return h, validation("gRPC codes are supported only by Application Load Balancer target groups")
	}
	if p.has("Matcher.HttpCode") {
		code := p.get("Matcher.HttpCode")
		if h.protocol == "TCP" {
			return h, validation("A matcher can be specified only for HTTP and HTTPS health checks")
		}
		if !httpCodeRe.MatchString(code) {
			return h, validation("Health check matcher HTTP code '%s' is not valid", code)
		}
		for _, part := range strings.FieldsFunc(code, func(r rune) bool { return r == ',' || r == '-' }) {
			if n, _ := strconv.Atoi(part); n < 200 || n > 599 {
				return h, validation("Health check matcher HTTP code '%s' must be within 200-599", code)
			}
		}
		h.matcher = code
	}
	return h, nil
}

func createTargetGroup(c *elbCtx, p *params) *apiError {
	name := p.get("Name")
	if err := checkELBName("target group", name, false); err != nil {
		return err
	}
	tt := p.get("TargetType")
	if tt == "" {
		tt = "instance"
	}
	switch tt {
	case "instance", "ip":
	case "lambda", "alb":
		return validation("ec2sim does not emulate target type '%s'", tt)
	default:
		return validation("Target type '%s' is not valid", tt)
	}
	proto := p.get("Protocol")
	switch {
	case proto == "":
		return validation("A protocol must be specified")
	case slices.Contains(nlbProtocols, proto):
	case slices.Contains([]string{"HTTP", "HTTPS", "GENEVE", "QUIC", "TCP_QUIC"}, proto):
		return validation("ec2sim emulates only Network Load Balancer target groups (TCP, TLS, UDP, TCP_UDP), not '%s'", proto)
	default:
		return validation("Protocol '%s' is not valid", proto)
	}
	if p.has("ProtocolVersion") {
		return validation("A protocol version can be specified only for HTTP and HTTPS target groups")
	}
	if p.has("TargetControlPort") {
		return validation("A target control port is supported only by Application Load Balancer target groups")
	}
	if !p.has("Port") {
		return validation("A port must be specified")
	}
	port, _, err := p.elbInt("Port", 1, 65535)
	if err != nil {
		return err
	}
	vpcID := p.get("VpcId")
	if vpcID == "" {
		return validation("A VPC ID must be specified")
	}
	var v *vpc
	for _, x := range c.w.vpcs {
		if x.id == vpcID {
			v = x
		}
	}
	if v == nil {
		return validation("The VPC ID '%s' is not found", vpcID)
	}
	ipType := p.get("IpAddressType")
	if ipType == "" {
		ipType = "ipv4"
	}
	switch ipType {
	case "ipv4":
	case "ipv6":
		if !slices.Contains(nlbProtocols, proto) || (tt != "instance" && tt != "ip") {
			return validation("IPv6 target groups support only the protocols TCP, UDP, TLS and TCP_UDP and the target types instance and ip")
		}
	default:
		return validation("The IP address type '%s' is not valid; valid values are 'ipv4' and 'ipv6'", ipType)
	}
	h, err := parseHealth(p, elbHealth{enabled: true, protocol: "TCP", port: "traffic-port", interval: 30, timeout: 10, healthy: 5, unheal: 2})
	if err != nil {
		return err
	}
	tags, err := p.elbTags()
	if err != nil {
		return err
	}
	for _, tg := range c.st.tgs {
		if tg.name != name {
			continue
		}
		if tg.protocol == proto && tg.port == port && tg.vpc == v && tg.targetType == tt && tg.ipType == ipType && tg.health == h {
			c.x.open("TargetGroups")
			c.renderTG(tg)
			c.x.close("TargetGroups")
			return nil
		}
		return elbErrf("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
	}
	id := c.st.newHexID(c.w, "elb-tg-")
	tg := &elbTG{seq: c.st.seq, name: name, protocol: proto, port: port, vpc: v, targetType: tt, ipType: ipType, health: h,
		attrs: defaultTGAttrs(proto, tt), tags: map[string]string{}}
	tg.arn = c.w.elbARN("targetgroup/" + name + "/" + id)
	if err := applyTags(tg.tags, tags); err != nil {
		return err
	}
	c.st.tgs = append(c.st.tgs, tg)
	c.st.tgByARN[tg.arn] = tg
	c.x.open("TargetGroups")
	c.renderTG(tg)
	c.x.close("TargetGroups")
	return nil
}

func describeTargetGroups(c *elbCtx, p *params) *apiError {
	lbARN, arns, names := p.get("LoadBalancerArn"), p.list("TargetGroupArns.member"), p.list("Names.member")
	given := 0
	for _, b := range []bool{lbARN != "", len(arns) > 0, len(names) > 0} {
		if b {
			given++
		}
	}
	if given > 1 {
		return validation("Specify only one of load balancer ARN, target group ARNs and target group names")
	}
	pg, err := p.elbPaging("DescribeTargetGroups")
	if err != nil {
		return err
	}
	want := map[*elbTG]bool{}
	if lbARN != "" {
		lb, err := c.st.lookupLB(lbARN)
		if err != nil {
			return err
		}
		for _, tg := range c.st.tgsOf(lb) {
			want[tg] = true
		}
	}
	for _, arn := range arns {
		tg, err := c.st.lookupTG(arn)
		if err != nil {
			return err
		}
		want[tg] = true
	}
	var missing []string
	for _, n := range names {
		found := false
		for _, tg := range c.st.tgs {
			if tg.name == n {
				want[tg], found = true, true
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return elbErrf("TargetGroupNotFound", "Target groups '[%s]' not found", strings.Join(missing, ", "))
	}
	items, tok := page(c.st.tgs, func(tg *elbTG) int { return tg.seq }, func(tg *elbTG) bool { return given == 0 || want[tg] }, pg)
	c.x.open("TargetGroups")
	for _, tg := range items {
		c.renderTG(tg)
	}
	c.x.close("TargetGroups")
	c.nextMarker(tok)
	return nil
}

func modifyTargetGroup(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	h, err := parseHealth(p, tg.health)
	if err != nil {
		return err
	}
	tg.health = h
	c.x.open("TargetGroups")
	c.renderTG(tg)
	c.x.close("TargetGroups")
	return nil
}

func deleteTargetGroup(c *elbCtx, p *params) *apiError {
	arn := p.get("TargetGroupArn")
	tg, err := c.st.lookupTG(arn)
	if err != nil {
		if err.Code == "TargetGroupNotFound" {
			return nil // idempotent: the API lists no not-found error
		}
		return err
	}
	if len(c.st.lbsOf(tg)) > 0 {
		return elbErrf("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	delete(c.st.tgByARN, arn)
	c.st.tgs = slices.DeleteFunc(c.st.tgs, func(x *elbTG) bool { return x == tg })
	return nil
}

func describeTargetGroupAttributes(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	c.renderAttrs(tgAttrOrder, tg.attrs)
	return nil
}

func modifyTargetGroupAttributes(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	kvs, err := p.attrKV()
	if err != nil {
		return err
	}
	next := make(map[string]string, len(tg.attrs))
	for k, v := range tg.attrs {
		next[k] = v
	}
	udp := tg.protocol == "UDP" || tg.protocol == "TCP_UDP"
	intIn := func(v string, lo, hi int) bool { n, err := strconv.Atoi(v); return err == nil && n >= lo && n <= hi }
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		ok := true
		switch k {
		case "deregistration_delay.timeout_seconds":
			ok = intIn(v, 0, 3600)
		case "deregistration_delay.connection_termination.enabled", "proxy_protocol_v2.enabled", "stickiness.enabled",
			"target_health_state.unhealthy.connection_termination.enabled":
			ok = isBoolString(v)
		case "preserve_client_ip.enabled":
			ok = isBoolString(v)
			if ok && v == "false" && udp {
				return validation("Client IP preservation cannot be disabled for UDP and TCP_UDP target groups")
			}
		case "stickiness.type":
			ok = v == "source_ip"
		case "load_balancing.cross_zone.enabled":
			ok = v == "true" || v == "false" || v == "use_load_balancer_configuration"
		case "target_health_state.unhealthy.draining_interval_seconds":
			ok = intIn(v, 0, 360000)
		case "target_group_health.dns_failover.minimum_healthy_targets.count",
			"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count":
			ok = v == "off" || intIn(v, 1, 1<<30)
		case "target_group_health.dns_failover.minimum_healthy_targets.percentage",
			"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage":
			ok = v == "off" || intIn(v, 1, 100)
		default:
			return validation("Target group attribute key '%s' is not recognized", k)
		}
		if !ok {
			return validation("Target group attribute value '%s' is not valid for target group attribute key '%s'", v, k)
		}
		next[k] = v
	}
	if next["target_health_state.unhealthy.draining_interval_seconds"] != "0" &&
		next["target_health_state.unhealthy.connection_termination.enabled"] != "false" {
		return validation("target_health_state.unhealthy.draining_interval_seconds can be set only when target_health_state.unhealthy.connection_termination.enabled is false")
	}
	tg.attrs = next
	c.renderAttrs(tgAttrOrder, tg.attrs)
	return nil
}

// targetSpec is one Targets.member.N.
type targetSpec struct {
	id, az  string
	port    int
	portSet bool
}

func (p *params) targetSpecs(tg *elbTG) ([]targetSpec, *apiError) {
	var out []targetSpec
	for _, n := range p.members("Targets") {
		id, _ := p.field("Targets", n, "Id")
		if id == "" {
			return nil, validation("A target ID must be specified")
		}
		t := targetSpec{id: id, port: tg.port}
		if v, ok := p.field("Targets", n, "Port"); ok {
			port, err := strconv.Atoi(v)
			if err != nil || port < 1 || port > 65535 {
				return nil, validation("Port '%s' of target '%s' must be between 1 and 65535", v, id)
			}
			t.port, t.portSet = port, true
		}
		t.az, _ = p.field("Targets", n, "AvailabilityZone")
		if _, ok := p.field("Targets", n, "QuicServerId"); ok {
			return nil, validation("A QUIC server ID can be specified only for QUIC and TCP_QUIC target groups")
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, validation("At least one target must be specified")
	}
	return out, nil
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "'" + id + "'"
	}
	return strings.Join(q, ", ")
}

// targetAZ checks one target for registration with tg and returns its
// Availability Zone, or the reason (bucket of InvalidTarget) it is refused.
func (c *elbCtx) targetAZ(tg *elbTG, t targetSpec) (az, refusal string, aerr *apiError) {
	if tg.targetType == "instance" {
		if t.az != "" {
			return "", "", validation("An Availability Zone cannot be specified for targets of target type 'instance'")
		}
		inst := c.w.instByID[t.id]
		switch {
		case inst == nil:
			return "", "notFound", nil
		case inst.state() != "running":
			return "", "notRunning", nil
		case inst.subnet.vpc != tg.vpc:
			return "", "otherVPC", nil
		}
		if tg.ipType == "ipv6" {
			e := inst.primaryENI()
			ok := false
			if e != nil && e.device == 0 && e.card == 0 && !e.released {
				for _, a := range e.v6 {
					ok = ok || a.primary
				}
			}
			if !ok {
				return "", "noPrimaryIPv6", nil
			}
		}
		return inst.subnet.zone.name, "", nil
	}
	a, err := netip.ParseAddr(t.id)
	want := "IPv4"
	if tg.ipType == "ipv6" {
		want = "IPv6"
	}
	if err != nil || (want == "IPv4") != a.Is4() || a.Is4In6() {
		return "", "", validation("The IP address '%s' is not a valid %s address", t.id, want)
	}
	for _, sn := range c.w.subnets {
		if sn.vpc != tg.vpc {
			continue
		}
		if (a.Is4() && sn.cidr.IsValid() && sn.cidr.Contains(a)) || (a.Is6() && sn.v6.IsValid() && sn.v6.Contains(a)) {
			if t.az != "" && t.az != sn.zone.name {
				return "", "", validation("The Availability Zone '%s' of IP address '%s' must be '%s'", t.az, t.id, sn.zone.name)
			}
			return sn.zone.name, "", nil
		}
	}
	return "", "", validation("The IP address '%s' is not within a subnet of the target group's VPC '%s'", t.id, tg.vpc.id)
}

func registerTargets(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	specs, err := p.targetSpecs(tg)
	if err != nil {
		return err
	}
	refused := map[string][]string{}
	azs := make([]string, len(specs))
	for i, t := range specs {
		az, why, err := c.targetAZ(tg, t)
		if err != nil {
			return err
		}
		if why != "" {
			refused[why] = append(refused[why], t.id)
		}
		azs[i] = az
	}
	switch {
	case len(refused["notFound"]) > 0:
		return elbErrf("InvalidTarget", "The following targets are not valid instances: %s", quoteList(refused["notFound"]))
	case len(refused["notRunning"]) > 0:
		return elbErrf("InvalidTarget", "The following targets are not in a running state and can't be registered: %s", quoteList(refused["notRunning"]))
	case len(refused["otherVPC"]) > 0:
		return elbErrf("InvalidTarget", "The following targets are not in the target group VPC '%s': %s", tg.vpc.id, quoteList(refused["otherVPC"]))
	case len(refused["noPrimaryIPv6"]) > 0:
		return elbErrf("InvalidTarget", "The following targets cannot be used with this IPv6 target group because of missing primary IPv6 addresses: %s", quoteList(refused["noPrimaryIPv6"]))
	}
	c.st.prune(c.now)
	for i, t := range specs {
		var cur *elbTarget
		for _, x := range tg.targets {
			if x.id == t.id && x.port == t.port {
				cur = x
			}
		}
		switch {
		case cur == nil:
			tg.targets = append(tg.targets, &elbTarget{id: t.id, port: t.port, az: azs[i], registered: c.now})
		case !cur.deregistered.IsZero():
			cur.deregistered, cur.registered = time.Time{}, c.now
		}
	}
	return nil
}

func deregisterTargets(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	specs, err := p.targetSpecs(tg)
	if err != nil {
		return err
	}
	for _, t := range specs {
		for _, x := range tg.targets {
			if x.id == t.id && x.port == t.port && x.deregistered.IsZero() {
				x.deregistered = c.now
			}
		}
	}
	c.st.prune(c.now)
	return nil
}

func describeTargetHealth(c *elbCtx, p *params) *apiError {
	tg, err := c.st.lookupTG(p.get("TargetGroupArn"))
	if err != nil {
		return err
	}
	for _, v := range p.list("Include.member") {
		if v != "AnomalyDetection" && v != "All" {
			return validation("Include value '%s' is not valid", v)
		}
	}
	c.st.prune(c.now)
	type row struct {
		t                    *elbTarget
		state, reason, descr string
	}
	var rows []row
	if len(p.members("Targets")) == 0 {
		for _, t := range tg.targets {
			s, r, d := c.st.targetHealth(c.w, tg, t, c.now)
			rows = append(rows, row{t, s, r, d})
		}
	} else {
		specs, err := p.targetSpecs(tg)
		if err != nil {
			return err
		}
		var invalid []string
		for _, sp := range specs {
			var cur *elbTarget
			for _, x := range tg.targets {
				if x.id == sp.id && x.port == sp.port {
					cur = x
				}
			}
			if cur != nil {
				s, r, d := c.st.targetHealth(c.w, tg, cur, c.now)
				rows = append(rows, row{cur, s, r, d})
				continue
			}
			if tg.targetType == "instance" && c.w.instByID[sp.id] == nil {
				invalid = append(invalid, sp.id)
				continue
			}
			rows = append(rows, row{&elbTarget{id: sp.id, port: sp.port, az: sp.az}, "unused", "Target.NotRegistered",
				"Target is not registered to the target group"})
		}
		if len(invalid) > 0 {
			return elbErrf("InvalidTarget", "The following targets are not valid: %s", quoteList(invalid))
		}
	}
	x := c.x
	x.open("TargetHealthDescriptions")
	for _, r := range rows {
		x.open("member")
		x.open("Target")
		x.el("Id", r.t.id)
		x.elInt("Port", r.t.port)
		if tg.targetType == "ip" && r.t.az != "" {
			x.el("AvailabilityZone", r.t.az)
		}
		x.close("Target")
		hp := tg.health.port
		if hp == "traffic-port" {
			hp = strconv.Itoa(r.t.port)
		}
		x.el("HealthCheckPort", hp)
		x.open("TargetHealth")
		x.el("State", r.state)
		if r.reason != "" {
			x.el("Reason", r.reason)
			x.el("Description", r.descr)
		}
		x.close("TargetHealth")
		x.close("member")
	}
	x.close("TargetHealthDescriptions")
	return nil
}

func (c *elbCtx) renderTG(tg *elbTG) {
	x := c.x
	x.open("member")
	x.el("TargetGroupArn", tg.arn)
	x.el("TargetGroupName", tg.name)
	x.el("Protocol", tg.protocol)
	x.elInt("Port", tg.port)
	x.el("VpcId", tg.vpc.id)
	x.el("HealthCheckProtocol", tg.health.protocol)
	x.el("HealthCheckPort", tg.health.port)
	x.elBool("HealthCheckEnabled", tg.health.enabled)
	x.elInt("HealthCheckIntervalSeconds", tg.health.interval)
	x.elInt("HealthCheckTimeoutSeconds", tg.health.timeout)
	x.elInt("HealthyThresholdCount", tg.health.healthy)
	x.elInt("UnhealthyThresholdCount", tg.health.unheal)
	if tg.health.protocol != "TCP" {
		x.el("HealthCheckPath", tg.health.path)
		x.open("Matcher")
		x.el("HttpCode", tg.health.matcher)
		x.close("Matcher")
	}
	var arns []string
	for _, lb := range c.st.lbsOf(tg) {
		arns = append(arns, lb.arn)
	}
	members(x, "LoadBalancerArns", arns)
	x.el("TargetType", tg.targetType)
	x.el("IpAddressType", tg.ipType)
	x.close("member")
}
