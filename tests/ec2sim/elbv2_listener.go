package ec2sim

import (
	"slices"
	"strconv"
)

// listenerTGProtocols are the target group protocols a Network Load
// Balancer listener of each protocol can forward to.
var listenerTGProtocols = map[string][]string{
	"TCP":     {"TCP", "TCP_UDP"},
	"TLS":     {"TCP", "TLS"},
	"UDP":     {"UDP", "TCP_UDP"},
	"TCP_UDP": {"TCP_UDP"},
}

// defaultSSLPolicy is the security policy of a TLS listener created
// without SslPolicy.
const defaultSSLPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"

var alpnPolicies = []string{"HTTP1Only", "HTTP2Only", "HTTP2Optional", "HTTP2Preferred", "None"}

func checkListenerProtocol(proto string) *apiError {
	switch {
	case proto == "":
		return validation("A listener protocol must be specified")
	case listenerTGProtocols[proto] != nil:
		return nil
	case slices.Contains([]string{"HTTP", "HTTPS", "GENEVE", "QUIC", "TCP_QUIC"}, proto):
		return elbErrf("UnsupportedProtocol", "Protocol '%s' is not supported by ec2sim's Network Load Balancers (TCP, TLS, UDP, TCP_UDP)", proto)
	}
	return validation("Protocol '%s' is not valid", proto)
}

// parseForward reads the single forward action of DefaultActions.
func (c *elbCtx) parseForward(p *params) (elbForward, *apiError) {
	var f elbForward
	idx := p.members("DefaultActions")
	switch {
	case len(idx) == 0:
		return f, validation("A default action must be specified")
	case len(idx) > 1:
		return f, elbErrf("InvalidLoadBalancerAction", "Network Load Balancer listeners support exactly one default action")
	}
	pre := "DefaultActions.member." + strconv.Itoa(idx[0])
	if t := p.get(pre + ".Type"); t != "forward" {
		return f, elbErrf("InvalidLoadBalancerAction", "The action type '%s' is not supported by Network Load Balancers; use 'forward'", t)
	}
	if p.has(pre + ".Order") {
		n, _, err := p.elbInt(pre+".Order", 1, 50000)
		if err != nil {
			return f, err
		}
		f.order = n
	}
	arn := p.get(pre + ".TargetGroupArn")
	fc := pre + ".ForwardConfig.TargetGroups"
	fcIdx := p.members(fc)
	if len(fcIdx) > 1 {
		return f, elbErrf("InvalidLoadBalancerAction", "Network Load Balancers can forward to only one target group")
	}
	f.weight = 1
	if len(fcIdx) == 1 {
		farn, _ := p.field(fc, fcIdx[0], "TargetGroupArn")
		if arn != "" && farn != arn {
			return f, elbErrf("InvalidLoadBalancerAction", "The target group in ForwardConfig must be the target group given in TargetGroupArn")
		}
		arn = farn
		if w, ok := p.field(fc, fcIdx[0], "Weight"); ok {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 || n > 999 {
				return f, validation("Weight '%s' must be between 0 and 999", w)
			}
			f.weight = n
		}
	}
	if on, _, err := p.elbBool(pre + ".ForwardConfig.TargetGroupStickinessConfig.Enabled"); err != nil {
		return f, err
	} else if on {
		return f, elbErrf("InvalidLoadBalancerAction", "Target group stickiness is not supported by Network Load Balancers")
	}
	if arn == "" {
		return f, validation("A target group ARN must be specified for a forward action")
	}
	tg, err := c.st.lookupTG(arn)
	if err != nil {
		return f, err
	}
	f.tg = tg
	return f, nil
}

// checkForward applies AWS's rules for a listener of lb with protocol
// forwarding to f.tg (self is the listener being modified, if any).
func (c *elbCtx) checkForward(lb *elbLB, proto string, f elbForward) *apiError {
	tg := f.tg
	if tg.vpc != lb.vpc {
		return elbErrf("InvalidConfigurationRequest", "Target group '%s' is in a different VPC than load balancer '%s'", tg.arn, lb.arn)
	}
	if tg.ipType == "ipv6" && lb.ipType != "dualstack" {
		return elbErrf("InvalidConfigurationRequest", "You cannot associate an IPv6 target group with a load balancer that has an '%s' IP address type", lb.ipType)
	}
	for _, other := range c.st.lbsOf(tg) {
		if other != lb {
			return elbErrf("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", tg.arn)
		}
	}
	if !slices.Contains(listenerTGProtocols[proto], tg.protocol) {
		return elbErrf("IncompatibleProtocols", "Listener protocol '%s' is not compatible with target group protocol '%s'", proto, tg.protocol)
	}
	return nil
}

// parseTLS reads Certificates, SslPolicy and AlpnPolicy for protocol.
func (p *params) parseTLS(proto string, l *elbListener) *apiError {
	idx := p.members("Certificates")
	given := len(idx) > 0 || p.has("SslPolicy") || len(p.list("AlpnPolicy.member")) > 0
	if proto != "TLS" {
		if given {
			return validation("Certificates, a security policy and an ALPN policy can be specified only for TLS listeners")
		}
		l.certs, l.sslPolicy, l.alpn = nil, "", nil
		return nil
	}
	if len(idx) > 0 {
		if len(idx) > 1 {
			return validation("You must provide exactly one default certificate")
		}
		arn, _ := p.field("Certificates", idx[0], "CertificateArn")
		if arn == "" {
			return validation("A certificate ARN must be specified")
		}
		if isDef, ok := p.field("Certificates", idx[0], "IsDefault"); ok && isDef == "true" {
			return validation("Do not set IsDefault for the listener's default certificate")
		}
		l.certs = []string{arn}
	}
	if len(l.certs) == 0 {
		return elbErrf("CertificateNotFound", "A certificate must be specified for TLS listeners")
	}
	if p.has("SslPolicy") {
		l.sslPolicy = p.get("SslPolicy")
	}
	if l.sslPolicy == "" {
		l.sslPolicy = defaultSSLPolicy
	}
	if alpn := p.list("AlpnPolicy.member"); len(alpn) > 0 {
		if len(alpn) > 1 || !slices.Contains(alpnPolicies, alpn[0]) {
			return elbErrf("ALPNPolicyNotFound", "ALPN policy '%v' is not valid", alpn)
		}
		l.alpn = alpn
	}
	return nil
}

func createListener(c *elbCtx, p *params) *apiError {
	lb, err := c.st.lookupLB(p.get("LoadBalancerArn"))
	if err != nil {
		return err
	}
	proto := p.get("Protocol")
	if err := checkListenerProtocol(proto); err != nil {
		return err
	}
	if !p.has("Port") {
		return validation("A listener port must be specified")
	}
	port, _, err := p.elbInt("Port", 1, 65535)
	if err != nil {
		return err
	}
	f, err := c.parseForward(p)
	if err != nil {
		return err
	}
	nl := &elbListener{lb: lb, port: port, protocol: proto, forward: f, tags: map[string]string{}}
	if err := p.parseTLS(proto, nl); err != nil {
		return err
	}
	tags, err := p.elbTags()
	if err != nil {
		return err
	}
	for _, l := range lb.listeners {
		if l.port != port {
			continue
		}
		if l.protocol == proto && l.forward.tg == f.tg && slices.Equal(l.certs, nl.certs) && l.sslPolicy == nl.sslPolicy {
			c.x.open("Listeners")
			c.renderListener(l)
			c.x.close("Listeners")
			return nil
		}
		return elbErrf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lb.arn)
	}
	if err := c.checkForward(lb, proto, f); err != nil {
		return err
	}
	// A dualstack NLB reaches UDP targets through an IPv6 source NAT
	// prefix per subnet, which only CreateLoadBalancer can turn on.
	if (proto == "UDP" || proto == "TCP_UDP") && lb.ipType == "dualstack" && lb.natIPv6 != "on" {
		return elbErrf("InvalidConfigurationRequest", "A %s listener on a dualstack load balancer needs EnablePrefixForIpv6SourceNat set to 'on'", proto)
	}
	if err := applyTags(nl.tags, tags); err != nil {
		return err
	}
	id := c.st.newHexID(c.w, "elb-listener-")
	nl.seq = c.st.seq
	nl.arn = c.w.elbARN("listener/net/" + lb.name + "/" + lb.id + "/" + id)
	lb.listeners = append(lb.listeners, nl)
	c.st.listeners[nl.arn] = nl
	c.x.open("Listeners")
	c.renderListener(nl)
	c.x.close("Listeners")
	return nil
}

func describeListeners(c *elbCtx, p *params) *apiError {
	lbARN, arns := p.get("LoadBalancerArn"), p.list("ListenerArns.member")
	switch {
	case lbARN == "" && len(arns) == 0:
		return validation("You must specify either listener ARNs or a load balancer ARN")
	case lbARN != "" && len(arns) > 0:
		return validation("Listener ARNs and a load balancer ARN cannot be specified at the same time")
	}
	pg, err := p.elbPaging("DescribeListeners")
	if err != nil {
		return err
	}
	var ls []*elbListener
	if lbARN != "" {
		lb, err := c.st.lookupLB(lbARN)
		if err != nil {
			return err
		}
		ls = lb.listeners
	} else {
		for _, arn := range arns {
			l, err := c.st.lookupListener(arn)
			if err != nil {
				return err
			}
			if !slices.Contains(ls, l) {
				ls = append(ls, l)
			}
		}
		slices.SortFunc(ls, func(a, b *elbListener) int { return a.seq - b.seq })
	}
	items, tok := page(ls, func(l *elbListener) int { return l.seq }, func(*elbListener) bool { return true }, pg)
	c.x.open("Listeners")
	for _, l := range items {
		c.renderListener(l)
	}
	c.x.close("Listeners")
	c.nextMarker(tok)
	return nil
}

func modifyListener(c *elbCtx, p *params) *apiError {
	l, err := c.st.lookupListener(p.get("ListenerArn"))
	if err != nil {
		return err
	}
	next := *l
	if p.has("Port") {
		port, _, err := p.elbInt("Port", 1, 65535)
		if err != nil {
			return err
		}
		for _, o := range l.lb.listeners {
			if o != l && o.port == port {
				return elbErrf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", l.lb.arn)
			}
		}
		next.port = port
	}
	if p.has("Protocol") {
		next.protocol = p.get("Protocol")
		if err := checkListenerProtocol(next.protocol); err != nil {
			return err
		}
	}
	if len(p.members("DefaultActions")) > 0 {
		f, err := c.parseForward(p)
		if err != nil {
			return err
		}
		next.forward = f
	}
	if err := p.parseTLS(next.protocol, &next); err != nil {
		return err
	}
	if err := c.checkForward(l.lb, next.protocol, next.forward); err != nil {
		return err
	}
	*l = next
	c.x.open("Listeners")
	c.renderListener(l)
	c.x.close("Listeners")
	return nil
}

func deleteListener(c *elbCtx, p *params) *apiError {
	l, err := c.st.lookupListener(p.get("ListenerArn"))
	if err != nil {
		return err
	}
	delete(c.st.listeners, l.arn)
	l.lb.listeners = slices.DeleteFunc(l.lb.listeners, func(x *elbListener) bool { return x == l })
	return nil
}

func (c *elbCtx) renderListener(l *elbListener) {
	x := c.x
	x.open("member")
	x.el("ListenerArn", l.arn)
	x.el("LoadBalancerArn", l.lb.arn)
	x.elInt("Port", l.port)
	x.el("Protocol", l.protocol)
	if len(l.certs) > 0 {
		x.open("Certificates")
		for _, cert := range l.certs {
			x.open("member")
			x.el("CertificateArn", cert)
			x.close("member")
		}
		x.close("Certificates")
	}
	if l.sslPolicy != "" {
		x.el("SslPolicy", l.sslPolicy)
	}
	if len(l.alpn) > 0 {
		members(x, "AlpnPolicy", l.alpn)
	}
	x.open("DefaultActions")
	x.open("member")
	x.el("Type", "forward")
	x.el("TargetGroupArn", l.forward.tg.arn)
	if l.forward.order > 0 {
		x.elInt("Order", l.forward.order)
	}
	x.open("ForwardConfig")
	x.open("TargetGroups")
	x.open("member")
	x.el("TargetGroupArn", l.forward.tg.arn)
	x.elInt("Weight", l.forward.weight)
	x.close("member")
	x.close("TargetGroups")
	x.open("TargetGroupStickinessConfig")
	x.elBool("Enabled", false)
	x.close("TargetGroupStickinessConfig")
	x.close("ForwardConfig")
	x.close("member")
	x.close("DefaultActions")
	x.close("member")
}
