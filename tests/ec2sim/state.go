package ec2sim

import "maps"

// State is a JSON-able dump of the emulated account.
type State struct {
	Region    string          `json:"region"`
	Subnets   []SubnetState   `json:"subnets"`
	Instances []InstanceState `json:"instances"`
	// SecurityGroups are every group with its rules, as SecurityGroups().
	SecurityGroups []SecurityGroup `json:"securityGroups"`
}

// SubnetState is one subnet with its address usage.
type SubnetState struct {
	ID       string `json:"id"`
	VPC      string `json:"vpc"`
	Zone     string `json:"zone"`
	CIDR     string `json:"cidr"` // empty in an IPv6-native subnet
	IPv6CIDR string `json:"ipv6CIDR,omitempty"`
	// IPv6Native: an IPv6-only subnet.
	IPv6Native bool `json:"ipv6Native,omitempty"`
	// IPv6Addresses and IPv6Prefixes count what is assigned in the subnet.
	IPv6Addresses int `json:"ipv6Addresses"`
	IPv6Prefixes  int `json:"ipv6Prefixes"`
	// Tags are the subnet's tags.
	Tags map[string]string `json:"tags,omitempty"`
}

// InstanceState is one instance; terminated instances have no ENIs.
type InstanceState struct {
	ID             string            `json:"id"`
	Type           string            `json:"type"`
	State          string            `json:"state"`
	PrivateDNSName string            `json:"privateDNSName"`
	PrivateIP      string            `json:"privateIP"` // empty without IPv4
	Subnet         string            `json:"subnet"`
	Zone           string            `json:"zone"`
	ZoneID         string            `json:"zoneID"`
	PublicIP       string            `json:"publicIP,omitempty"`      // empty unless running with one
	PublicDNSName  string            `json:"publicDNSName,omitempty"` // as DescribeInstances' dnsName
	Tags           map[string]string `json:"tags,omitempty"`
	ENIs           []ENIState        `json:"enis"`
}

// ENIState is one ENI with its current addresses and prefixes.
type ENIState struct {
	ID               string     `json:"id"`
	Subnet           string     `json:"subnet"`
	MAC              string     `json:"mac"`
	DeviceIndex      int        `json:"deviceIndex"`
	NetworkCardIndex int        `json:"networkCardIndex"`
	PrivateIPs       []string   `json:"privateIPs"`
	IPv6             []IPv6Addr `json:"ipv6"`
	IPv6Prefixes     []string   `json:"ipv6Prefixes"`
	// SecurityGroups are the IDs of the ENI's groups.
	SecurityGroups []string `json:"securityGroups"`
	// PrimaryIPv6 is set once EnablePrimaryIpv6 was (the address it made
	// primary has Primary set in IPv6).
	PrimaryIPv6     bool `json:"primaryIPv6,omitempty"`
	SourceDestCheck bool `json:"sourceDestCheck"`
}

// State returns the current (not lagged) state.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.w
	st := State{Region: w.region}
	for _, sn := range w.subnets {
		ss := SubnetState{ID: sn.id, VPC: sn.vpc.id, Zone: sn.zone.name, IPv6Native: sn.native, IPv6Addresses: len(sn.usedV6)}
		if sn.cidr.IsValid() {
			ss.CIDR = sn.cidr.String()
		}
		if sn.v6.IsValid() {
			ss.IPv6CIDR = sn.v6.String()
		}
		if len(sn.tags) > 0 {
			ss.Tags = maps.Clone(sn.tags)
		}
		for _, u := range sn.slots {
			if u.prefix {
				ss.IPv6Prefixes++
			}
		}
		st.Subnets = append(st.Subnets, ss)
	}
	for _, inst := range w.instances {
		is := InstanceState{ID: inst.id, Type: inst.typ, State: inst.state(), PrivateDNSName: inst.dns,
			Subnet: inst.subnet.id, Zone: inst.subnet.zone.name, ZoneID: inst.subnet.zone.id,
			PublicDNSName: w.publicDNSName(inst, inst.state()),
			Tags:          maps.Clone(inst.tags), ENIs: []ENIState{}}
		if inst.publicIP != "" && inst.state() == "running" {
			is.PublicIP = inst.publicIP
		}
		if inst.privateIP.IsValid() {
			is.PrivateIP = inst.privateIP.String()
		}
		for _, e := range inst.enis {
			if e.released {
				continue
			}
			es := ENIState{ID: e.id, Subnet: e.subnet.id, MAC: e.mac, DeviceIndex: e.device, NetworkCardIndex: e.card,
				PrivateIPs: addrStrings(e.v4), IPv6: []IPv6Addr{}, IPv6Prefixes: []string{},
				SecurityGroups: groupIDs(e.attrs.groups), PrimaryIPv6: e.attrs.primaryV6, SourceDestCheck: !e.attrs.srcDstOff}
			for _, a := range e.v6 {
				es.IPv6 = append(es.IPv6, IPv6Addr{Address: a.addr.String(), Primary: a.primary})
			}
			for _, p := range e.prefixes {
				es.IPv6Prefixes = append(es.IPv6Prefixes, p.String())
			}
			is.ENIs = append(is.ENIs, es)
		}
		st.Instances = append(st.Instances, is)
	}
	st.SecurityGroups = w.exportGroups()
	return st
}

// ENI returns the state of one live ENI.
func (st State) ENI(id string) (ENIState, bool) {
	for _, in := range st.Instances {
		for _, e := range in.ENIs {
			if e.ID == id {
				return e, true
			}
		}
	}
	return ENIState{}, false
}

// Instance returns the state of one instance.
func (st State) Instance(id string) (InstanceState, bool) {
	for _, in := range st.Instances {
		if in.ID == id {
			return in, true
		}
	}
	return InstanceState{}, false
}
