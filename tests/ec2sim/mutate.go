package ec2sim

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// lookupENI resolves NetworkInterfaceId for a mutating call.
func (w *world) lookupENI(p *params) (*eni, *apiError) {
	id := p.get("NetworkInterfaceId")
	if id == "" {
		return nil, missing("NetworkInterfaceId")
	}
	if !eniIDRe.MatchString(id) {
		return nil, errf(http.StatusBadRequest, "InvalidNetworkInterfaceId.Malformed", "Invalid id: %q (expecting \"eni-...\")", id)
	}
	e := w.enis[id]
	if e == nil {
		return nil, notFound("InvalidNetworkInterfaceID.NotFound", "network interface", []string{id})
	}
	return e, nil
}

// allocErr maps an allocation error to the EC2 error AWS returns.
func allocErr(err error, e *eni, what string) *apiError {
	switch {
	case errors.Is(err, errNoIPv6):
		return badValue("The subnet (%s) of network interface %s does not have an IPv6 CIDR block associated with it.", e.subnet.id, e.id)
	case errors.Is(err, errInUse):
		return errf(http.StatusBadRequest, "InvalidIPAddress.InUse", "The specified %s is already in use: %v", what, err)
	case errors.Is(err, errSubnetFull) && what == "prefix":
		return errf(http.StatusBadRequest, "InsufficientCidrBlocks", "The specified subnet does not have enough free cidr blocks to satisfy the request.")
	case errors.Is(err, errSubnetFull):
		return errf(http.StatusBadRequest, "InsufficientFreeAddressesInSubnet", "The specified subnet does not have enough free addresses to satisfy the request.")
	default:
		return badValue("Invalid IPv6 %s for subnet %s: %v", what, e.subnet.id, err)
	}
}

func assignIpv6Addresses(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"NetworkInterfaceId", "Ipv6AddressCount", "Ipv6Addresses.#", "Ipv6PrefixCount", "Ipv6Prefix.#"}); err != nil {
		return err
	}
	e, aerr := w.lookupENI(p)
	if aerr != nil {
		return aerr
	}
	addrCount, hasAC, aerr := p.intParam("Ipv6AddressCount")
	if aerr != nil {
		return aerr
	}
	prefCount, hasPC, aerr := p.intParam("Ipv6PrefixCount")
	if aerr != nil {
		return aerr
	}
	addrs, prefs := p.list("Ipv6Addresses"), p.list("Ipv6Prefix")
	switch {
	case hasAC && len(addrs) > 0:
		return badCombination("The parameters Ipv6AddressCount and Ipv6Addresses cannot be used together.")
	case hasPC && len(prefs) > 0:
		return badCombination("The parameters Ipv6PrefixCount and Ipv6Prefixes cannot be used together.")
	case (hasAC || len(addrs) > 0) && (hasPC || len(prefs) > 0):
		return badCombination("IPv6 addresses and IPv6 prefixes cannot be assigned in the same request.")
	case !hasAC && len(addrs) == 0 && !hasPC && len(prefs) == 0:
		return missing("Ipv6AddressCount, Ipv6Addresses, Ipv6PrefixCount or Ipv6Prefixes")
	case hasAC && addrCount < 1:
		return badValue("Invalid value '%d' for Ipv6AddressCount. It must be a positive number.", addrCount)
	case hasPC && prefCount < 1:
		return badValue("Invalid value '%d' for Ipv6PrefixCount. It must be a positive number.", prefCount)
	}
	if !e.subnet.v6.IsValid() {
		return allocErr(errNoIPv6, e, "address")
	}
	limit := w.types[e.inst.typ].IPv6PerENI
	overLimit := func() bool {
		return addrCount > limit || prefCount > limit || len(e.v6)+len(e.prefixes)+addrCount+len(addrs)+prefCount+len(prefs) > limit
	}
	if len(addrs) == 0 && len(prefs) == 0 && overLimit() {
		return errLimit()
	}
	var newAddrs []netip.Addr
	var newPrefs []netip.Prefix
	rollback := func() {
		for _, a := range newAddrs {
			e.subnet.freeV6(a)
		}
		for _, p := range newPrefs {
			e.subnet.freePrefix(p)
		}
	}
	// Explicit values (AWS docs silent on most of this; strict here, see
	// docs/reference/ec2sim.md "AssignIpv6Addresses with explicit values"):
	// a value listed twice is invalid; a value already on any ENI, this one
	// included, is InvalidIPAddress.InUse, so a repeat never assigns twice.
	if dup := firstDuplicate(addrs, prefs); dup != "" {
		return badValue("The value %s is specified more than once.", dup)
	}
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			rollback()
			return badValue("Invalid IPv6 address: %s", s)
		}
		if err := e.subnet.reserveV6(a); err != nil {
			rollback()
			return allocErr(err, e, "address")
		}
		newAddrs = append(newAddrs, a)
	}
	for _, s := range prefs {
		pf, err := netip.ParsePrefix(s)
		if err != nil || !pf.Addr().Is6() || pf.Bits() != 80 || pf.Masked() != pf {
			rollback()
			return badValue("Invalid IPv6 prefix: %s. Prefixes must be /80 networks.", s)
		}
		if err := e.subnet.reservePrefix(pf); err != nil {
			rollback()
			return allocErr(err, e, "prefix")
		}
		newPrefs = append(newPrefs, pf)
	}
	// Explicit values are checked (format, range, in use) before the limit,
	// so a repeat on an ENI that is full still answers InvalidIPAddress.InUse.
	if overLimit() {
		rollback()
		return errLimit()
	}
	for range addrCount {
		a, err := e.subnet.allocV6(w.rng)
		if err != nil {
			rollback()
			return allocErr(err, e, "address")
		}
		newAddrs = append(newAddrs, a)
	}
	for range prefCount {
		pf, err := e.subnet.allocPrefix(w.rng)
		if err != nil {
			rollback()
			return allocErr(err, e, "prefix")
		}
		newPrefs = append(newPrefs, pf)
	}
	for _, a := range newAddrs {
		e.v6 = append(e.v6, v6addr{addr: a})
	}
	e.prefixes = append(e.prefixes, newPrefs...)
	e.record(rc.now)
	x := rc.x
	x.el("networkInterfaceId", e.id)
	x.items("assignedIpv6Addresses", "", addrStrings(newAddrs))
	x.prefixItems("assignedIpv6PrefixSet", newPrefs)
	return nil
}

// firstDuplicate returns a value listed twice (compared as parsed values,
// so "2600::1" and "2600:0::1" are the same), or "".
func firstDuplicate(addrs, prefs []string) string {
	seen := map[string]bool{}
	for _, s := range addrs {
		k := s
		if a, err := netip.ParseAddr(s); err == nil {
			k = a.String()
		}
		if seen[k] {
			return s
		}
		seen[k] = true
	}
	for _, s := range prefs {
		k := "p" + s
		if p, err := netip.ParsePrefix(s); err == nil {
			k = "p" + p.String()
		}
		if seen[k] {
			return s
		}
		seen[k] = true
	}
	return ""
}

// The DescribeInstances filters that find which instance holds an IPv6
// address or prefix (documented in the EC2 API reference for
// DescribeInstances). They live here, beside the assignment they answer
// about; an ENI's values are seen with the describe's consistency lag.
func init() {
	v6addrs := func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		var out []string
		for _, e := range i.enis {
			v6, _ := e.view(at)
			for _, a := range v6 {
				out = append(out, a.addr.String())
			}
		}
		return out
	}
	instanceFilters["network-interface.ipv6-addresses.ipv6-address"] = v6addrs
	instanceFilters["network-interface.ipv6-address"] = v6addrs
	instanceFilters["network-interface.ipv6-prefixes.ipv6-prefix"] = func(_ *world, i *instance, at time.Time) []string {
		if i.stateAt(at) == "terminated" {
			return nil
		}
		var out []string
		for _, e := range i.enis {
			_, ps := e.view(at)
			for _, p := range ps {
				out = append(out, p.String())
			}
		}
		return out
	}
}

func errLimit() *apiError {
	return errf(http.StatusBadRequest, "PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
}

func unassignIpv6Addresses(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"NetworkInterfaceId", "Ipv6Addresses.#", "Ipv6Prefix.#"}); err != nil {
		return err
	}
	e, aerr := w.lookupENI(p)
	if aerr != nil {
		return aerr
	}
	addrs, prefs := p.list("Ipv6Addresses"), p.list("Ipv6Prefix")
	if len(addrs) == 0 && len(prefs) == 0 {
		return missing("Ipv6Addresses or Ipv6Prefixes")
	}
	var gone []netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		i := slices.IndexFunc(e.v6, func(v v6addr) bool { return v.addr == a })
		if err != nil || i < 0 || slices.Contains(gone, a) {
			return badValue("Some of the specified addresses are not assigned to interface %s", e.id)
		}
		gone = append(gone, a)
	}
	var gonePrefs []netip.Prefix
	for _, s := range prefs {
		pf, err := netip.ParsePrefix(s)
		if err != nil || !slices.Contains(e.prefixes, pf) || slices.Contains(gonePrefs, pf) {
			return badValue("Some of the specified prefixes are not assigned to interface %s", e.id)
		}
		gonePrefs = append(gonePrefs, pf)
	}
	for _, a := range gone {
		e.subnet.freeV6(a)
	}
	for _, pf := range gonePrefs {
		e.subnet.freePrefix(pf)
	}
	e.v6 = slices.DeleteFunc(e.v6, func(v v6addr) bool { return slices.Contains(gone, v.addr) })
	e.prefixes = slices.DeleteFunc(e.prefixes, func(pf netip.Prefix) bool { return slices.Contains(gonePrefs, pf) })
	e.record(rc.now)
	x := rc.x
	x.el("networkInterfaceId", e.id)
	x.items("unassignedIpv6Addresses", "", addrStrings(gone))
	x.prefixItems("unassignedIpv6PrefixSet", gonePrefs)
	return nil
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func (x xw) prefixItems(set string, ps []netip.Prefix) {
	vals := make([]string, len(ps))
	for i, p := range ps {
		vals[i] = p.String()
	}
	x.items(set, "", vals)
}

// taggable returns the tag map of a resource ID and a function marking
// cached XML stale.
func (w *world) taggable(id string) (map[string]string, func(), *apiError) {
	switch {
	case strings.HasPrefix(id, "i-"):
		if !instanceIDRe.MatchString(id) {
			return nil, nil, errf(http.StatusBadRequest, "InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
		if inst := w.instByID[id]; inst != nil {
			return inst.tags, func() { inst.xml = nil }, nil
		}
		return nil, nil, notFound("InvalidInstanceID.NotFound", "instance", []string{id})
	case strings.HasPrefix(id, "subnet-"):
		if s := w.subnetByID(id); s != nil {
			return s.tags, func() {}, nil
		}
		return nil, nil, notFound("InvalidSubnetID.NotFound", "subnet", []string{id})
	case strings.HasPrefix(id, "vpc-"):
		for _, v := range w.vpcs {
			if v.id == id {
				return v.tags, func() {}, nil
			}
		}
		return nil, nil, notFound("InvalidVpcID.NotFound", "vpc", []string{id})
	case strings.HasPrefix(id, "sg-"):
		if !sgIDRe.MatchString(id) {
			return nil, nil, malformedGroup(id)
		}
		if g := w.groupByID(id); g != nil {
			return g.tags, func() {}, nil
		}
		return nil, nil, groupNotFound([]string{id})
	}
	return nil, nil, errf(http.StatusBadRequest, "InvalidID", "The ID '%s' is not valid", id)
}

type tagKV struct {
	key, value string
	hasValue   bool
}

func (p *params) tags() []tagKV {
	var out []tagKV
	for i := 1; ; i++ {
		k, ok := p.v[fmt.Sprintf("Tag.%d.Key", i)]
		if !ok {
			return out
		}
		v, hv := p.v[fmt.Sprintf("Tag.%d.Value", i)]
		t := tagKV{key: k[0], hasValue: hv}
		if hv {
			t.value = v[0]
		}
		out = append(out, t)
	}
}

func createTags(w *world, p *params, rc reqCtx) *apiError {
	return changeTags(w, p, rc, true)
}

func deleteTags(w *world, p *params, rc reqCtx) *apiError {
	return changeTags(w, p, rc, false)
}

func changeTags(w *world, p *params, rc reqCtx, create bool) *apiError {
	if err := p.checkKnown([]string{"ResourceId.#", "Tag.#.Key", "Tag.#.Value"}); err != nil {
		return err
	}
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return missing("ResourceId")
	}
	// AWS: "Constraints: Up to 1000 resource IDs" per call.
	if len(ids) > 1000 {
		return badValue("Too many resource IDs (%d): a request can name at most 1000", len(ids))
	}
	tags := p.tags()
	if create && len(tags) == 0 {
		return missing("Tag")
	}
	for _, t := range tags {
		switch {
		case t.key == "" || len(t.key) > 128 || len(t.value) > 256:
			return badValue("Invalid tag key or value: %q", t.key)
		case strings.HasPrefix(strings.ToLower(t.key), "aws:"):
			return badValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	type target struct {
		m     map[string]string
		stale func()
	}
	var targets []target
	for _, id := range ids {
		m, stale, err := w.taggable(id)
		if err != nil {
			return err
		}
		targets = append(targets, target{m, stale})
	}
	for _, t := range targets {
		if create {
			added := 0
			for _, tg := range tags {
				if _, ok := t.m[tg.key]; !ok {
					added++
				}
			}
			if len(t.m)+added > 50 {
				return errf(http.StatusBadRequest, "TagLimitExceeded", "The maximum number of tags for a resource (50) has been reached.")
			}
		}
	}
	for _, t := range targets {
		for _, tg := range tags {
			if create {
				t.m[tg.key] = tg.value
			} else if old, ok := t.m[tg.key]; ok && (!tg.hasValue || old == tg.value) {
				delete(t.m, tg.key)
			}
		}
		if !create && len(tags) == 0 {
			clear(t.m)
		}
		t.stale()
	}
	rc.x.elBool("return", true)
	return nil
}
