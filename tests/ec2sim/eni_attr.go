package ec2sim

import (
	"net/http"
	"slices"
	"strings"
)

// eniAttrUnsupported are ModifyNetworkInterfaceAttribute parameters the SDK
// sends that ec2sim does not emulate: they answer UnsupportedOperation, not
// UnknownParameter, since EC2 knows them.
var eniAttrUnsupported = []string{"Attachment.", "ConnectionTrackingSpecification.", "EnaSrdSpecification.",
	"AssociatedSubnetId.", "AssociatePublicIpAddress"}

// modifyNetworkInterfaceAttribute changes one attribute of an ENI:
// EnablePrimaryIpv6, its security groups (SecurityGroupId.N),
// SourceDestCheck.Value or Description.Value.
func modifyNetworkInterfaceAttribute(w *world, p *params, rc reqCtx) *apiError {
	for k := range p.v {
		for _, pre := range eniAttrUnsupported {
			if strings.HasPrefix(k, pre) {
				return errf(http.StatusBadRequest, "UnsupportedOperation", "ec2sim does not emulate the attribute %s of ModifyNetworkInterfaceAttribute.", k)
			}
		}
	}
	if err := p.checkKnown([]string{"NetworkInterfaceId", "EnablePrimaryIpv6", "SecurityGroupId.#", "SourceDestCheck.Value", "Description.Value"}); err != nil {
		return err
	}
	e, aerr := w.lookupENI(p)
	if aerr != nil {
		return aerr
	}
	groups := p.list("SecurityGroupId")
	n := len(slices.DeleteFunc([]bool{p.has("EnablePrimaryIpv6"), len(groups) > 0, p.has("SourceDestCheck.Value"), p.has("Description.Value")},
		func(b bool) bool { return !b }))
	switch {
	case n == 0:
		return missing("EnablePrimaryIpv6, SecurityGroupId, SourceDestCheck or Description")
	case n > 1:
		return badCombination("You can modify only one attribute of a network interface at a time.")
	}
	switch {
	case p.has("EnablePrimaryIpv6"):
		on, err := p.boolParam("EnablePrimaryIpv6")
		if err != nil {
			return err
		}
		if !on {
			// "Once you enable an IPv6 GUA address to be a primary IPv6,
			// you cannot disable it."
			return badValue("The value false for EnablePrimaryIpv6 is not supported: a primary IPv6 address cannot be disabled.")
		}
		if len(e.v6) == 0 {
			return badValue("Network interface %s has no IPv6 address that could become its primary IPv6 address.", e.id)
		}
		if e.enablePrimaryV6() {
			e.record(rc.now)
		}
	case len(groups) > 0:
		gs, err := w.eniGroups(e, groups)
		if err != nil {
			return err
		}
		e.attrs.groups = gs
		e.inst.xml = nil
	case p.has("SourceDestCheck.Value"):
		on, err := p.boolParam("SourceDestCheck.Value")
		if err != nil {
			return err
		}
		e.attrs.srcDstOff = !on
		e.inst.xml = nil
	default:
		e.attrs.desc = p.get("Description.Value")
		e.inst.xml = nil
	}
	rc.x.elBool("return", true)
	return nil
}

// eniGroups resolves the new security groups of an ENI: IDs of groups in
// the ENI's VPC, at most five.
func (w *world) eniGroups(e *eni, ids []string) ([]*secGroup, *apiError) {
	var out []*secGroup
	for _, id := range ids {
		if !sgIDRe.MatchString(id) {
			return nil, malformedGroup(id)
		}
		g := w.groupByID(id)
		if g == nil || g.vpc != e.subnet.vpc {
			return nil, groupNotFound([]string{id})
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if len(out) > maxGroupsPerENI {
		return nil, errf(http.StatusBadRequest, "SecurityGroupsPerInterfaceLimitExceeded",
			"The maximum number of security groups per interface (%d) has been reached.", maxGroupsPerENI)
	}
	return out, nil
}
