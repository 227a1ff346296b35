package ec2sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// stateCodes maps instance state names to EC2's state codes.
var stateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80,
}

// builtinTypes are real networking limits of common instance types.
var builtinTypes = []InstanceType{
	{Name: "t3.micro", MaxENIs: 2, IPv4PerENI: 2, IPv6PerENI: 2},
	{Name: "t3.medium", MaxENIs: 3, IPv4PerENI: 6, IPv6PerENI: 6},
	{Name: "t3.large", MaxENIs: 3, IPv4PerENI: 12, IPv6PerENI: 12},
	{Name: "m5.large", MaxENIs: 3, IPv4PerENI: 10, IPv6PerENI: 10},
	{Name: "m5.xlarge", MaxENIs: 4, IPv4PerENI: 15, IPv6PerENI: 15},
	{Name: "m6i.large", MaxENIs: 3, IPv4PerENI: 10, IPv6PerENI: 10},
	{Name: "c5.large", MaxENIs: 3, IPv4PerENI: 10, IPv6PerENI: 10},
	{Name: "c6g.medium", MaxENIs: 2, IPv4PerENI: 4, IPv6PerENI: 4},
	{Name: "r5.large", MaxENIs: 3, IPv4PerENI: 10, IPv6PerENI: 10},
	{Name: "m5.24xlarge", MaxENIs: 15, IPv4PerENI: 50, IPv6PerENI: 50},
}

var (
	instanceIDRe = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	eniIDRe      = regexp.MustCompile(`^eni-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// genID returns prefix + 17 hex digits derived from seed and n.
func genID(prefix string, seed int64, n uint64) string {
	h := fnv.New64a()
	h.Write([]byte(prefix))
	x := splitmix(uint64(seed)*0x9e3779b97f4a7c15 ^ h.Sum64() ^ n)
	return fmt.Sprintf("%s0%016x", prefix, x)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

type zone struct{ name, id string }

type vpc struct {
	id           string
	dnsHostnames bool
	cidr         netip.Prefix
	v6           netip.Prefix
	tags         map[string]string
}

type subnet struct {
	id     string
	vpc    *vpc
	zone   *zone
	cidr   netip.Prefix // invalid in an IPv6-native subnet
	v6     netip.Prefix // invalid when the subnet has no IPv6 CIDR
	native bool         // IPv6-only: no IPv4 CIDR, ENIs have no IPv4
	dnsOpt PrivateDNSNameOptions
	assoc  string
	tags   map[string]string
	// mapPublic is mapPublicIpOnLaunch (Subnet.MapPublicIPOnLaunch).
	mapPublic bool
	usedV4    map[netip.Addr]bool
	nextV4    netip.Addr
	// slots holds, per /80 slot of the /64 (bits 64..79), whether it is a
	// delegated prefix and how many single addresses live in it.
	slots  map[uint16]*slotUse
	usedV6 map[netip.Addr]bool
}

type slotUse struct {
	prefix bool
	addrs  int
}

type v6addr struct {
	addr    netip.Addr
	primary bool
}

type eni struct {
	seq      int
	id       string
	inst     *instance
	subnet   *subnet
	device   int
	card     int
	mac      string
	attachID string
	v4       []netip.Addr
	v6       []v6addr
	prefixes []netip.Prefix
	hist     []eniVer
	released bool
	attrs    eniAttrs // security groups and other attributes (sg.go)
}

type instance struct {
	seq       int
	id        string
	typ       string
	subnet    *subnet
	dns       string
	publicIP  string
	privateIP netip.Addr // invalid when the primary ENI has no IPv4
	dnsOpt    PrivateDNSNameOptions
	tags      map[string]string
	launch    time.Time
	created   time.Time // zero for scenario instances
	enis      []*eni
	states    []stateVer
	xml       []byte // cached <item> for DescribeInstances, nil when stale
}

// world is the emulated account. All access goes through Sim.mu.
type world struct {
	region, account string
	seed            int64
	rng             *rand.Rand
	idCounter       uint64
	ids             map[string]bool
	zones           []*zone
	vpcs            []*vpc
	subnets         []*subnet
	types           map[string]InstanceType
	typeOrder       []string
	instances       []*instance
	instByID        map[string]*instance
	instByDNS       map[string][]*instance
	enis            map[string]*eni
	eniOrder        []*eni
	eniSeq, instSeq int
	imdsInstance    string
	sec             sgState   // security groups (sg.go)
	elb             *elbState // ELBv2 resources, created on first use (elbv2_state.go)
}

func newWorld(s *Scenario) (*world, error) {
	w := &world{
		region: s.Region, account: s.AccountID, seed: s.Seed,
		ids: map[string]bool{}, types: map[string]InstanceType{},
		instByID: map[string]*instance{}, instByDNS: map[string][]*instance{}, enis: map[string]*eni{},
	}
	if w.region == "" {
		w.region = "us-east-1"
	}
	if w.account == "" {
		w.account = "111122223333"
	}
	if w.seed == 0 {
		w.seed = 1
	}
	w.rng = rand.New(rand.NewPCG(uint64(w.seed), 0x5eed))
	if err := w.buildNetwork(s); err != nil {
		return nil, err
	}
	if err := w.buildSecurityGroups(s); err != nil {
		return nil, err
	}
	for _, t := range append(slices.Clone(builtinTypes), s.InstanceTypes...) {
		if t.Name == "" || t.MaxENIs < 1 || t.IPv4PerENI < 1 || t.IPv6PerENI < 0 {
			return nil, fmt.Errorf("instance type %q: name, maxENIs and ipv4PerENI are required", t.Name)
		}
		if t.NetworkCards == 0 {
			t.NetworkCards = 1
		}
		if _, ok := w.types[t.Name]; !ok {
			w.typeOrder = append(w.typeOrder, t.Name)
		}
		w.types[t.Name] = t
	}
	for i, in := range s.Instances {
		if _, err := w.addInstance(in, time.Time{}); err != nil {
			return nil, fmt.Errorf("instance %d (%s): %w", i, in.ID, err)
		}
	}
	w.imdsInstance = s.IMDSInstance
	if w.imdsInstance == "" && len(w.instances) > 0 {
		w.imdsInstance = w.instances[0].id
	}
	if w.imdsInstance != "" && w.instByID[w.imdsInstance] == nil {
		return nil, fmt.Errorf("imdsInstance %q is not an instance of the scenario", w.imdsInstance)
	}
	return w, nil
}

func (w *world) newID(prefix string) string {
	for {
		w.idCounter++
		id := genID(prefix, w.seed, w.idCounter)
		if !w.ids[id] {
			w.ids[id] = true
			return id
		}
	}
}

func (w *world) claimID(id string) error {
	if w.ids[id] {
		return fmt.Errorf("duplicate ID %s", id)
	}
	w.ids[id] = true
	return nil
}

// zoneID derives an AWS-style zone ID such as use1-az1 from a region.
func zoneID(region string, n int) string {
	abbr := map[string]string{"east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
		"southeast": "se", "northeast": "ne", "southwest": "sw", "northwest": "nw"}
	parts := strings.Split(region, "-")
	var b strings.Builder
	for i, p := range parts {
		if a, ok := abbr[p]; ok && i > 0 {
			b.WriteString(a)
		} else {
			b.WriteString(p)
		}
	}
	return fmt.Sprintf("%s-az%d", b.String(), n)
}

func (w *world) buildNetwork(s *Scenario) error {
	zones := s.Zones
	if len(zones) == 0 {
		for i := range 3 {
			zones = append(zones, Zone{Name: w.region + string(rune('a'+i))})
		}
	}
	for i, z := range zones {
		if z.ID == "" {
			z.ID = zoneID(w.region, i+1)
		}
		if !strings.HasPrefix(z.Name, w.region) {
			return fmt.Errorf("zone %q is not in region %s", z.Name, w.region)
		}
		w.zones = append(w.zones, &zone{name: z.Name, id: z.ID})
	}
	vpcs := s.VPCs
	if len(vpcs) == 0 {
		vpcs = []VPC{{CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:4000:a900::/56"}}
	}
	for _, v := range vpcs {
		nv := &vpc{id: v.ID, tags: cloneTags(v.Tags), dnsHostnames: v.DNSHostnames}
		if nv.id == "" {
			nv.id = w.newID("vpc-")
		} else if err := w.claimID(nv.id); err != nil {
			return err
		}
		if v.CIDR == "" {
			v.CIDR = "10.0.0.0/16"
		}
		nv.cidr = netip.MustParsePrefix(v.CIDR)
		if v.IPv6CIDR != "" {
			nv.v6 = netip.MustParsePrefix(v.IPv6CIDR)
		}
		w.vpcs = append(w.vpcs, nv)
	}
	subnets := s.Subnets
	if len(subnets) == 0 {
		base := w.vpcs[0].cidr.Addr().As4()
		for i, z := range w.zones {
			sn := Subnet{Zone: z.name, CIDR: fmt.Sprintf("%d.%d.%d.0/20", base[0], base[1], i*16)}
			if v6 := w.vpcs[0].v6; v6.IsValid() {
				a := v6.Addr().As16()
				a[7] += byte(i + 1)
				sn.IPv6CIDR = netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
			}
			subnets = append(subnets, sn)
		}
		var err error
		if subnets, err = w.clusterSubnets(s.ClusterID, subnets); err != nil {
			return err
		}
	}
	for _, sn := range subnets {
		if err := w.addSubnet(sn); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) addSubnet(sn Subnet) error {
	ns := &subnet{id: sn.ID, tags: cloneTags(sn.Tags), usedV4: map[netip.Addr]bool{},
		slots: map[uint16]*slotUse{0: {addrs: 1}, 0xffff: {addrs: 1}}, usedV6: map[netip.Addr]bool{}}
	if ns.id == "" {
		ns.id = w.newID("subnet-")
	} else if err := w.claimID(ns.id); err != nil {
		return err
	}
	ns.vpc = w.vpcs[0]
	if sn.VPC != "" {
		ns.vpc = nil
		for _, v := range w.vpcs {
			if v.id == sn.VPC {
				ns.vpc = v
			}
		}
		if ns.vpc == nil {
			return fmt.Errorf("subnet %s: unknown vpc %q", ns.id, sn.VPC)
		}
	}
	ns.zone = w.zones[0]
	if sn.Zone != "" {
		ns.zone = w.zoneByName(sn.Zone)
		if ns.zone == nil {
			return fmt.Errorf("subnet %s: unknown zone %q", ns.id, sn.Zone)
		}
	}
	sn.ID = ns.id
	if err := checkSubnetFields(sn); err != nil {
		return err
	}
	if err := errors.Join(checkPrefix("cidr", sn.CIDR, true, 0), checkPrefix("ipv6CIDR", sn.IPv6CIDR, false, 64),
		checkDNSOptions("privateDnsNameOptionsOnLaunch", sn.PrivateDNSNameOptionsOnLaunch)); err != nil {
		return fmt.Errorf("subnet %s: %w", ns.id, err)
	}
	ns.native = sn.IPv6Native
	ns.mapPublic = sn.MapPublicIPOnLaunch
	ns.dnsOpt.HostnameType = HostnameTypeIPName
	if ns.native {
		ns.dnsOpt.HostnameType = HostnameTypeResourceName
	}
	if o := sn.PrivateDNSNameOptionsOnLaunch; o != nil {
		ns.dnsOpt.EnableResourceNameDNSARecord = o.EnableResourceNameDNSARecord
		ns.dnsOpt.EnableResourceNameDNSAAAARecord = o.EnableResourceNameDNSAAAARecord
		if o.HostnameType != "" {
			ns.dnsOpt.HostnameType = o.HostnameType
		}
	}
	if !ns.native {
		ns.cidr = netip.MustParsePrefix(sn.CIDR)
		if !ns.vpc.cidr.Contains(ns.cidr.Addr()) || ns.cidr.Bits() < ns.vpc.cidr.Bits() {
			return fmt.Errorf("subnet %s: %s is outside vpc %s", ns.id, ns.cidr, ns.vpc.cidr)
		}
	}
	if sn.IPv6CIDR != "" {
		ns.v6 = netip.MustParsePrefix(sn.IPv6CIDR)
		if !ns.vpc.v6.IsValid() || !ns.vpc.v6.Contains(ns.v6.Addr()) {
			return fmt.Errorf("subnet %s: %s is outside the vpc's IPv6 CIDR", ns.id, ns.v6)
		}
		ns.assoc = strings.Replace(w.newID("subnet-cidr-assoc-"), "-0", "-", 1)
	}
	// AWS reserves the first four addresses and the last one.
	if !ns.native {
		ns.nextV4 = ns.cidr.Addr().Next().Next().Next().Next()
	}
	w.subnets = append(w.subnets, ns)
	return nil
}

func (w *world) zoneByName(name string) *zone {
	for _, z := range w.zones {
		if z.name == name {
			return z
		}
	}
	return nil
}

func (w *world) subnetByID(id string) *subnet {
	for _, s := range w.subnets {
		if s.id == id {
			return s
		}
	}
	return nil
}

func cloneTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// dnsName is EC2's private DNS name for an IPv4 address in this region.
func (w *world) dnsName(ip netip.Addr) string {
	host := "ip-" + strings.ReplaceAll(ip.String(), ".", "-")
	if w.region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + w.region + ".compute.internal"
}

// resourceName is EC2's resource-based private DNS name of an instance.
func (w *world) resourceName(id string) string {
	if w.region == "us-east-1" {
		return id + ".ec2.internal"
	}
	return id + "." + w.region + ".compute.internal"
}

// addInstance builds an instance and its ENIs; on error nothing is kept.
func (w *world) addInstance(in Instance, now time.Time) (_ *instance, err error) {
	inst := &instance{id: in.ID, typ: in.Type, publicIP: in.PublicIP, tags: cloneTags(in.Tags),
		launch: in.LaunchTime, created: now}
	if inst.typ == "" {
		inst.typ = "m5.large"
	}
	t, ok := w.types[inst.typ]
	if !ok {
		return nil, fmt.Errorf("unknown instance type %q", inst.typ)
	}
	state := in.State
	if state == "" {
		state = "running"
	}
	if _, ok := stateCodes[state]; !ok {
		return nil, fmt.Errorf("unknown state %q", state)
	}
	inst.states = []stateVer{{at: now, state: state}}
	if inst.launch.IsZero() {
		inst.launch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	inst.subnet = w.subnets[0]
	if in.Subnet != "" {
		if inst.subnet = w.subnetByID(in.Subnet); inst.subnet == nil {
			return nil, fmt.Errorf("unknown subnet %q", in.Subnet)
		}
	}
	if in.ID != "" && !instanceIDRe.MatchString(in.ID) {
		return nil, fmt.Errorf("malformed instance ID %q", in.ID)
	}
	enis := in.ENIs
	if len(enis) == 0 {
		enis = []ENI{{DeviceIndex: 0}}
	}
	if len(enis) > t.MaxENIs {
		return nil, fmt.Errorf("%d ENIs exceed %s's limit of %d", len(enis), inst.typ, t.MaxENIs)
	}
	seen := map[[2]int]bool{}
	for _, e := range enis {
		k := [2]int{e.NetworkCardIndex, e.DeviceIndex}
		if seen[k] || e.DeviceIndex < 0 || e.NetworkCardIndex < 0 || e.NetworkCardIndex >= t.NetworkCards {
			return nil, fmt.Errorf("bad or duplicate device index %d on network card %d", e.DeviceIndex, e.NetworkCardIndex)
		}
		seen[k] = true
	}
	var claimed []string
	defer func() {
		if err != nil {
			for _, e := range inst.enis {
				w.release(e)
			}
			for _, id := range claimed {
				delete(w.ids, id)
			}
		}
	}()
	if inst.id == "" {
		inst.id = w.newID("i-")
	} else if err := w.claimID(inst.id); err != nil {
		return nil, err
	}
	claimed = append(claimed, inst.id)
	for _, spec := range enis {
		e, err := w.buildENI(inst, t, spec, now)
		if e != nil {
			inst.enis = append(inst.enis, e)
			claimed = append(claimed, e.id)
		}
		if err != nil {
			return nil, fmt.Errorf("eni %s: %w", spec.ID, err)
		}
	}
	for i, e := range inst.enis {
		if err := w.setupENI(e, in, enis[i]); err != nil {
			return nil, fmt.Errorf("eni %s: %w", e.id, err)
		}
	}
	primary := inst.enis[0]
	for _, e := range inst.enis {
		if e.card == 0 && e.device == 0 {
			primary = e
		}
	}
	inst.subnet = primary.subnet
	if len(primary.v4) > 0 {
		inst.privateIP = primary.v4[0]
	}
	if err := checkDNSOptions("privateDnsNameOptions", in.PrivateDNSNameOptions); err != nil {
		return nil, err
	}
	inst.dnsOpt = inst.subnet.dnsOpt
	if o := in.PrivateDNSNameOptions; o != nil {
		inst.dnsOpt = *o
		if o.HostnameType == "" {
			inst.dnsOpt.HostnameType = inst.subnet.dnsOpt.HostnameType
		}
	}
	if inst.subnet.native && inst.dnsOpt.HostnameType != HostnameTypeResourceName {
		return nil, fmt.Errorf("privateDnsNameOptions.hostnameType must be resource-name in the ipv6Native subnet %s", inst.subnet.id)
	}
	inst.dns = in.PrivateDNSName
	switch {
	case inst.dns != "":
	case inst.dnsOpt.HostnameType == HostnameTypeResourceName:
		inst.dns = w.resourceName(inst.id)
	default:
		inst.dns = w.dnsName(inst.privateIP)
	}
	if inst.publicIP != "" {
		if a, err := netip.ParseAddr(inst.publicIP); err != nil || !a.Is4() {
			return nil, fmt.Errorf("bad public IP %q", inst.publicIP)
		}
	}
	w.instSeq++
	inst.seq = w.instSeq
	w.instances = append(w.instances, inst)
	w.instByID[inst.id] = inst
	w.instByDNS[inst.dns] = append(w.instByDNS[inst.dns], inst)
	for _, e := range inst.enis {
		w.enis[e.id] = e
		w.eniOrder = append(w.eniOrder, e)
	}
	if state == "terminated" {
		w.terminate(inst, now)
	}
	return inst, nil
}

// buildENI creates an ENI; a non-nil ENI is returned whenever it holds
// reservations that must be released on error.
func (w *world) buildENI(inst *instance, t InstanceType, spec ENI, now time.Time) (*eni, error) {
	e := &eni{id: spec.ID, inst: inst, subnet: inst.subnet, device: spec.DeviceIndex, card: spec.NetworkCardIndex, mac: spec.MAC}
	if spec.Subnet != "" {
		if e.subnet = w.subnetByID(spec.Subnet); e.subnet == nil {
			return nil, fmt.Errorf("unknown subnet %q", spec.Subnet)
		}
		if e.subnet.zone != inst.subnet.zone {
			return nil, fmt.Errorf("subnet %s is in another zone than the instance", spec.Subnet)
		}
	}
	if e.id == "" {
		e.id = w.newID("eni-")
	} else if !eniIDRe.MatchString(e.id) {
		return nil, fmt.Errorf("malformed ENI ID %q", e.id)
	} else if err := w.claimID(e.id); err != nil {
		return nil, err
	}
	w.eniSeq++
	e.seq = w.eniSeq
	e.attachID = strings.Replace(e.id, "eni-", "eni-attach-", 1)
	if e.mac == "" {
		x := splitmix(uint64(w.seed) ^ uint64(e.seq)<<20)
		e.mac = fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32))
	}
	if e.subnet.native && len(spec.PrivateIPs) > 0 {
		return e, fmt.Errorf("privateIPs are not allowed in the ipv6Native subnet %s", e.subnet.id)
	}
	if len(spec.PrivateIPs) > t.IPv4PerENI {
		return e, fmt.Errorf("%d private IPs exceed %s's limit of %d", len(spec.PrivateIPs), t.Name, t.IPv4PerENI)
	}
	for _, s := range spec.PrivateIPs {
		a := netip.MustParseAddr(s)
		if err := e.subnet.reserveV4(a); err != nil {
			return e, err
		}
		e.v4 = append(e.v4, a)
	}
	if len(e.v4) == 0 && !e.subnet.native {
		a, err := e.subnet.allocV4()
		if err != nil {
			return e, err
		}
		e.v4 = append(e.v4, a)
	}
	if spec.IPv6AddressCount < 0 || spec.IPv6PrefixCount < 0 || spec.IPv6AddressCount > t.IPv6PerENI || spec.IPv6PrefixCount > t.IPv6PerENI {
		return e, fmt.Errorf("ipv6AddressCount and ipv6PrefixCount must be within 0..%d", t.IPv6PerENI)
	}
	if n := len(spec.IPv6) + len(spec.IPv6Prefixes) + spec.IPv6AddressCount + spec.IPv6PrefixCount; n > t.IPv6PerENI {
		return e, fmt.Errorf("%d IPv6 addresses and prefixes exceed %s's limit of %d", n, t.Name, t.IPv6PerENI)
	} else if n > 0 && !e.subnet.v6.IsValid() {
		return e, fmt.Errorf("subnet %s has no IPv6 CIDR", e.subnet.id)
	}
	for _, a := range spec.IPv6 {
		addr := netip.MustParseAddr(a.Address)
		if err := e.subnet.reserveV6(addr); err != nil {
			return e, err
		}
		e.v6 = append(e.v6, v6addr{addr: addr, primary: a.Primary})
	}
	for _, p := range spec.IPv6Prefixes {
		pfx := netip.MustParsePrefix(p)
		if err := e.subnet.reservePrefix(pfx); err != nil {
			return e, err
		}
		e.prefixes = append(e.prefixes, pfx)
	}
	n := spec.IPv6AddressCount
	if e.subnet.native && len(e.v6) == 0 && n == 0 {
		// An ENI in an IPv6-only subnet needs an IPv6 address: AWS
		// assigns one at launch.
		if t.IPv6PerENI < 1+len(e.prefixes)+spec.IPv6PrefixCount {
			return e, fmt.Errorf("%s cannot hold the IPv6 address an ENI in the ipv6Native subnet %s needs", t.Name, e.subnet.id)
		}
		n = 1
	}
	for range n {
		a, err := e.subnet.allocV6(w.rng)
		if err != nil {
			return e, err
		}
		e.v6 = append(e.v6, v6addr{addr: a})
	}
	for range spec.IPv6PrefixCount {
		p, err := e.subnet.allocPrefix(w.rng)
		if err != nil {
			return e, err
		}
		e.prefixes = append(e.prefixes, p)
	}
	e.hist = []eniVer{{at: now, v6: slices.Clone(e.v6), prefixes: slices.Clone(e.prefixes)}}
	return e, nil
}

// release returns an ENI's addresses and prefixes to its subnet.
func (w *world) release(e *eni) {
	if e.released {
		return
	}
	e.released = true
	for _, a := range e.v4 {
		delete(e.subnet.usedV4, a)
	}
	for _, a := range e.v6 {
		e.subnet.freeV6(a.addr)
	}
	for _, p := range e.prefixes {
		e.subnet.freePrefix(p)
	}
	delete(w.enis, e.id)
}

// terminate deletes the instance's ENIs; the instance stays visible.
func (w *world) terminate(inst *instance, now time.Time) {
	for _, e := range inst.enis {
		w.release(e)
	}
	w.setState(inst, "terminated", now)
}

// errInUse reports an explicit address or prefix that is already taken.
var errInUse = errors.New("already in use")
