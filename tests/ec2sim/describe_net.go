package ec2sim

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
)

var (
	subnetIDRe = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	vpcIDRe    = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

var eniFilters = map[string]fieldFunc[*eni]{
	"network-interface-id":   func(_ *world, e *eni, _ time.Time) []string { return []string{e.id} },
	"attachment.instance-id": func(_ *world, e *eni, _ time.Time) []string { return []string{e.inst.id} },
	"attachment.device-index": func(_ *world, e *eni, _ time.Time) []string {
		return []string{strconv.Itoa(e.device)}
	},
	"attachment.attachment-id": func(_ *world, e *eni, _ time.Time) []string { return []string{e.attachID} },
	"attachment.status":        func(*world, *eni, time.Time) []string { return []string{"attached"} },
	"status":                   func(*world, *eni, time.Time) []string { return []string{"in-use"} },
	"interface-type":           func(*world, *eni, time.Time) []string { return []string{"interface"} },
	"owner-id":                 func(w *world, _ *eni, _ time.Time) []string { return []string{w.account} },
	"subnet-id":                func(_ *world, e *eni, _ time.Time) []string { return []string{e.subnet.id} },
	"vpc-id":                   func(_ *world, e *eni, _ time.Time) []string { return []string{e.subnet.vpc.id} },
	"availability-zone":        func(_ *world, e *eni, _ time.Time) []string { return []string{e.subnet.zone.name} },
	"mac-address":              func(_ *world, e *eni, _ time.Time) []string { return []string{e.mac} },
	"private-ip-address": func(_ *world, e *eni, _ time.Time) []string {
		out := make([]string, len(e.v4))
		for i, a := range e.v4 {
			out[i] = a.String()
		}
		return out
	},
	"ipv6-addresses.ipv6-address": func(_ *world, e *eni, at time.Time) []string {
		v6, _ := e.view(at)
		out := make([]string, len(v6))
		for i, a := range v6 {
			out[i] = a.addr.String()
		}
		return out
	},
}

// eniVisible: the ENI exists and its instance is visible at time at.
func eniVisible(e *eni, at time.Time) bool {
	return !e.released && e.inst.stateAt(at) != ""
}

func describeNetworkInterfaces(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"NetworkInterfaceId.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	ids := p.list("NetworkInterfaceId")
	for _, id := range ids {
		if !eniIDRe.MatchString(id) {
			return errf(http.StatusBadRequest, "InvalidNetworkInterfaceId.Malformed", "Invalid id: %q (expecting \"eni-...\")", id)
		}
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, eniFilters, nil)
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeNetworkInterfaces", 5, 1000, len(ids) > 0, "networkInterfaceIdSet")
	if err != nil {
		return err
	}
	cands := w.eniOrder
	if len(ids) > 0 {
		cands = nil
		var missingIDs []string
		for _, id := range ids {
			e := w.enis[id]
			if e == nil || !eniVisible(e, rc.at) {
				missingIDs = append(missingIDs, id)
			} else if !slices.Contains(cands, e) {
				cands = append(cands, e)
			}
		}
		if len(missingIDs) > 0 {
			return notFound("InvalidNetworkInterfaceID.NotFound", "network interface", missingIDs)
		}
		slices.SortFunc(cands, func(a, b *eni) int { return a.seq - b.seq })
	}
	out, next := page(cands, func(e *eni) int { return e.seq }, func(e *eni) bool {
		return eniVisible(e, rc.at) && match(w, e, rc.at)
	}, pg)
	x := rc.x
	if len(out) == 0 {
		x.WriteString("<networkInterfaceSet/>")
	} else {
		x.open("networkInterfaceSet")
		for _, e := range out {
			w.renderENI(x, e, rc.at)
		}
		x.close("networkInterfaceSet")
	}
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}

var subnetFilters = map[string]fieldFunc[*subnet]{
	"subnet-id":            func(_ *world, s *subnet, _ time.Time) []string { return []string{s.id} },
	"vpc-id":               func(_ *world, s *subnet, _ time.Time) []string { return []string{s.vpc.id} },
	"availability-zone":    func(_ *world, s *subnet, _ time.Time) []string { return []string{s.zone.name} },
	"availability-zone-id": func(_ *world, s *subnet, _ time.Time) []string { return []string{s.zone.id} },
	"cidr-block": func(_ *world, s *subnet, _ time.Time) []string {
		if s.native {
			return nil
		}
		return []string{s.cidr.String()}
	},
	"ipv6-native": func(_ *world, s *subnet, _ time.Time) []string { return []string{strconv.FormatBool(s.native)} },
	"state":       func(*world, *subnet, time.Time) []string { return []string{"available"} },
	"ipv6-cidr-block-association.ipv6-cidr-block": func(_ *world, s *subnet, _ time.Time) []string {
		if s.v6.IsValid() {
			return []string{s.v6.String()}
		}
		return nil
	},
}

func describeSubnets(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"SubnetId.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	ids := p.list("SubnetId")
	var missingIDs []string
	for _, id := range ids {
		if !subnetIDRe.MatchString(id) {
			return errf(http.StatusBadRequest, "InvalidSubnetID.Malformed", "Invalid id: %q", id)
		}
		if w.subnetByID(id) == nil {
			missingIDs = append(missingIDs, id)
		}
	}
	if len(missingIDs) > 0 {
		return notFound("InvalidSubnetID.NotFound", "subnet", missingIDs)
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, subnetFilters, func(s *subnet) map[string]string { return s.tags })
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeSubnets", 5, 1000, len(ids) > 0, "subnetIds")
	if err != nil {
		return err
	}
	seq := func(s *subnet) int { return slices.Index(w.subnets, s) + 1 }
	out, next := page(w.subnets, seq, func(s *subnet) bool {
		return (len(ids) == 0 || slices.Contains(ids, s.id)) && match(w, s, rc.at)
	}, pg)
	x := rc.x
	x.open("subnetSet")
	for _, s := range out {
		w.renderSubnet(x, s)
	}
	x.close("subnetSet")
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}

var vpcFilters = map[string]fieldFunc[*vpc]{
	"vpc-id": func(_ *world, v *vpc, _ time.Time) []string { return []string{v.id} },
	"cidr":   func(_ *world, v *vpc, _ time.Time) []string { return []string{v.cidr.String()} },
	"cidr-block-association.cidr-block": func(_ *world, v *vpc, _ time.Time) []string {
		return []string{v.cidr.String()}
	},
	"state": func(*world, *vpc, time.Time) []string { return []string{"available"} },
	"ipv6-cidr-block-association.ipv6-cidr-block": func(_ *world, v *vpc, _ time.Time) []string {
		if v.v6.IsValid() {
			return []string{v.v6.String()}
		}
		return nil
	},
}

func describeVpcs(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"VpcId.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	ids := p.list("VpcId")
	var missingIDs []string
	for _, id := range ids {
		if !vpcIDRe.MatchString(id) {
			return errf(http.StatusBadRequest, "InvalidVpcID.Malformed", "Invalid id: %q", id)
		}
		if !slices.ContainsFunc(w.vpcs, func(v *vpc) bool { return v.id == id }) {
			missingIDs = append(missingIDs, id)
		}
	}
	if len(missingIDs) > 0 {
		return notFound("InvalidVpcID.NotFound", "vpc", missingIDs)
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, vpcFilters, func(v *vpc) map[string]string { return v.tags })
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeVpcs", 5, 1000, len(ids) > 0, "vpcIds")
	if err != nil {
		return err
	}
	seq := func(v *vpc) int { return slices.Index(w.vpcs, v) + 1 }
	out, next := page(w.vpcs, seq, func(v *vpc) bool {
		return (len(ids) == 0 || slices.Contains(ids, v.id)) && match(w, v, rc.at)
	}, pg)
	x := rc.x
	x.open("vpcSet")
	for _, v := range out {
		w.renderVPC(x, v)
	}
	x.close("vpcSet")
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}

var zoneFilters = map[string]fieldFunc[*zone]{
	"zone-name":            func(_ *world, z *zone, _ time.Time) []string { return []string{z.name} },
	"zone-id":              func(_ *world, z *zone, _ time.Time) []string { return []string{z.id} },
	"region-name":          func(w *world, _ *zone, _ time.Time) []string { return []string{w.region} },
	"state":                func(*world, *zone, time.Time) []string { return []string{"available"} },
	"zone-type":            func(*world, *zone, time.Time) []string { return []string{"availability-zone"} },
	"opt-in-status":        func(*world, *zone, time.Time) []string { return []string{"opt-in-not-required"} },
	"group-name":           func(w *world, _ *zone, _ time.Time) []string { return []string{w.region} },
	"network-border-group": func(w *world, _ *zone, _ time.Time) []string { return []string{w.region} },
}

func describeAvailabilityZones(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"ZoneName.#", "ZoneId.#", "AllAvailabilityZones", "Filter.#.Name", "Filter.#.Value.#"}); err != nil {
		return err
	}
	if _, err := p.boolParam("AllAvailabilityZones"); err != nil {
		return err
	}
	names, zids := p.list("ZoneName"), p.list("ZoneId")
	for _, n := range names {
		if w.zoneByName(n) == nil {
			return badValue("Invalid availability zone: [%s]", n)
		}
	}
	for _, id := range zids {
		if !slices.ContainsFunc(w.zones, func(z *zone) bool { return z.id == id }) {
			return badValue("Invalid availability zone ID: [%s]", id)
		}
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, zoneFilters, nil)
	if err != nil {
		return err
	}
	x := rc.x
	x.open("availabilityZoneInfo")
	for _, z := range w.zones {
		if (len(names) > 0 || len(zids) > 0) && !slices.Contains(names, z.name) && !slices.Contains(zids, z.id) {
			continue
		}
		if !match(w, z, rc.at) {
			continue
		}
		x.open("item")
		x.el("zoneName", z.name)
		x.el("zoneId", z.id)
		x.el("zoneState", "available")
		x.el("regionName", w.region)
		x.el("zoneType", "availability-zone")
		x.el("groupName", w.region)
		x.el("networkBorderGroup", w.region)
		x.el("optInStatus", "opt-in-not-required")
		x.WriteString("<messageSet/>")
		x.close("item")
	}
	x.close("availabilityZoneInfo")
	return nil
}

var typeFilters = map[string]fieldFunc[InstanceType]{
	"instance-type": func(_ *world, t InstanceType, _ time.Time) []string { return []string{t.Name} },
	"network-info.ipv6-supported": func(_ *world, t InstanceType, _ time.Time) []string {
		return []string{strconv.FormatBool(t.IPv6PerENI > 0)}
	},
}

func describeInstanceTypes(w *world, p *params, rc reqCtx) *apiError {
	if err := p.checkKnown([]string{"InstanceType.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults", "NextToken"}); err != nil {
		return err
	}
	names := p.list("InstanceType")
	var unknown []string
	for _, n := range names {
		if _, ok := w.types[n]; !ok {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return errf(http.StatusBadRequest, "InvalidInstanceType", "The following supplied instance types do not exist: %v", unknown)
	}
	fs, err := p.filters()
	if err != nil {
		return err
	}
	match, err := compileFilters(fs, typeFilters, nil)
	if err != nil {
		return err
	}
	pg, err := parsePaging(p, "DescribeInstanceTypes", 5, 100, false, "")
	if err != nil {
		return err
	}
	types := make([]InstanceType, len(w.typeOrder))
	for i, n := range w.typeOrder {
		types[i] = w.types[n]
	}
	seq := func(t InstanceType) int { return slices.Index(w.typeOrder, t.Name) + 1 }
	out, next := page(types, seq, func(t InstanceType) bool {
		return (len(names) == 0 || slices.Contains(names, t.Name)) && match(w, t, rc.at)
	}, pg)
	x := rc.x
	x.open("instanceTypeSet")
	for _, t := range out {
		x.open("item")
		x.el("instanceType", t.Name)
		x.elBool("currentGeneration", true)
		x.el("hypervisor", "nitro")
		x.open("networkInfo")
		x.el("networkPerformance", "Up to 10 Gigabit")
		x.elInt("maximumNetworkInterfaces", t.MaxENIs)
		x.elInt("maximumNetworkCards", t.NetworkCards)
		x.elInt("defaultNetworkCardIndex", 0)
		x.open("networkCards")
		for c := range t.NetworkCards {
			x.open("item")
			x.elInt("networkCardIndex", c)
			x.elInt("maximumNetworkInterfaces", t.MaxENIs)
			x.close("item")
		}
		x.close("networkCards")
		x.elInt("ipv4AddressesPerInterface", t.IPv4PerENI)
		x.elInt("ipv6AddressesPerInterface", t.IPv6PerENI)
		x.elBool("ipv6Supported", t.IPv6PerENI > 0)
		x.el("enaSupport", "required")
		x.close("networkInfo")
		x.close("item")
	}
	x.close("instanceTypeSet")
	if next != "" {
		x.el("nextToken", next)
	}
	return nil
}
